#pragma once
// A console browser script (tests/browser/<name>.mjs: Debian's chromium driven by playwright-core)
// run by node beside a test's stack, as the three browser tests run theirs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "testsupport.h"

namespace convoy::test {

// Starts tests/browser/<script> with `env` and SCREENSHOT_DIR: each screen's picture goes to the
// build folder's console-screenshots (a test run leaves the source tree as it was), or to
// CONVOY_CONSOLE_SCREENSHOTS (=$PWD/docs/console refreshes the README's); what it prints to `log`.
inline bool StartBrowserScript(ChildProcess& node, const std::string& script,
                               const std::string& log, std::map<std::string, std::string> env) {
  const std::string shots = Env("CONVOY_CONSOLE_SCREENSHOTS", BinaryPath("console-screenshots"));
  if (std::system(("mkdir -p '" + shots + "'").c_str()) != 0) return false;
  env["SCREENSHOT_DIR"] = shots;
  return node.Start({"/usr/bin/env", "node", SourcePath("tests/browser/" + script)}, log, env);
}

// Waits for the script to end and passes on what it printed; it must exit 0 having printed "all
// checks passed" (one line per check before it). Its output, for more checks.
inline std::string ExpectBrowserChecksPassed(ChildProcess& node) {
  const int exit = node.Wait();
  const std::string out = node.Log();
  std::cout << out;
  EXPECT_EQ(exit, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos);
  return out;
}

}  // namespace convoy::test
