#pragma once
// scripts/infra.sh on the cluster tests' own cluster (tests/cluster/run_cluster_test.sh hands them
// its environment: test::Env reads it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "testsupport.h"

namespace convoy::test {

// scripts/infra.sh on the test's cluster: "kill rabbit 1", "pause rabbit 2", "failover pg", ...
// What it printed is in the failure's message when it fails.
inline void Infra(const std::string& args) {
  const std::string out = Env("CONVOY_RUN_DIR") + "/infra-last.log";
  const std::string cmd = Env("CONVOY_CLUSTER_INFRA") + " " + args + " >'" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream in(out);
    std::stringstream printed;
    printed << in.rdbuf();
    FAIL() << cmd << " exited " << rc << ":\n" << printed.str();
  }
}

}  // namespace convoy::test
