#pragma once
// What tests/cluster/run_cluster_test.sh hands the cluster tests: the environment and
// scripts/infra.sh on the test's own cluster.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace convoy::test {

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// scripts/infra.sh on the test's cluster: "kill rabbit 1", "pause rabbit 2", "failover pg", ...
inline void Infra(const std::string& args) {
  const std::string cmd = Env("CONVOY_CLUSTER_INFRA") + " " + args + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace convoy::test
