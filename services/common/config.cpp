#include "convoy/config.h"

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "convoy/log.h"

namespace convoy {
namespace {
const char* g_service = "convoy";

bool Fail(const char* flag, const std::string& why) {
  std::fprintf(stderr, "invalid value for --%s: %s\n", flag, why.c_str());
  return false;
}

bool HasPrefix(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

bool ValidatePort(const char* flag, int32_t value) {
  if (value < 0 || value > 65535)
    return Fail(flag, "must be 0..65535, got " + std::to_string(value));
  return true;
}

bool ValidateMetricsPort(const char* flag, int32_t value) {
  if (value == -1) return true;
  return ValidatePort(flag, value);
}

bool InRange(const char* flag, double value, double lo, double hi) {
  if (value >= lo && value <= hi) return true;
  // Whole numbers (counts, bytes) in full: %g would say 1.04858e+06 for 1 MiB.
  const bool whole = value == std::trunc(value) && lo == std::trunc(lo) && hi == std::trunc(hi);
  std::fprintf(stderr,
               whole ? "invalid value for --%s: %.0f (must be %.0f..%.0f)\n"
                     : "invalid value for --%s: %g (must be %g..%g)\n",
               flag, value, lo, hi);
  return false;
}

bool ValidatePositive(const char* flag, int32_t value) {
  if (value <= 0) return Fail(flag, "must be > 0, got " + std::to_string(value));
  return true;
}

bool ValidateNonEmpty(const char* flag, const std::string& value) {
  if (value.empty()) return Fail(flag, "must not be empty");
  return true;
}

bool ValidateAmqpUrl(const char* flag, const std::string& value) {
  // One URL, or a cluster's nodes comma-separated: each one amqp:// or amqps://.
  size_t at = 0;
  while (true) {
    const size_t end = std::min(value.find(',', at), value.size());
    std::string one = value.substr(at, end - at);
    one.erase(0, std::min(one.find_first_not_of(' '), one.size()));
    if (!HasPrefix(one, "amqp://") && !HasPrefix(one, "amqps://")) {
      return Fail(
          flag,
          "must start with amqp:// or amqps:// (a cluster: its nodes' URLs, comma-separated)");
    }
    if (end == value.size()) return true;
    at = end + 1;
  }
}

bool ValidateHttpUrl(const char* flag, const std::string& value) {
  if (!HasPrefix(value, "http://") && !HasPrefix(value, "https://"))
    return Fail(flag, "must start with http:// or https://");
  if (!value.empty() && value.back() == '/') return Fail(flag, "must not end with '/'");
  return true;
}

Result<std::string> LoadSecret(const std::string& env_name, const std::string& file_path) {
  std::string value;
  if (!file_path.empty()) {
    std::ifstream in(file_path, std::ios::binary);
    if (!in) return Status(Code::kNotFound, "cannot read secret file " + file_path);
    std::ostringstream ss;
    ss << in.rdbuf();
    value = ss.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  } else if (const char* env = std::getenv(env_name.c_str())) {
    value = env;
  }
  if (value.empty()) {
    return Status(Code::kInvalidArgument,
                  "secret missing: set " + env_name + " or its --*_file flag");
  }
  return value;
}

namespace {
bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

std::string FindDataDir(const std::string& path, const std::string& installed_name) {
  if (path.empty() || path[0] == '/' || IsDir(path)) return path;
  std::vector<std::string> candidates;
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    candidates.push_back(dir + "/../share/convoy/" + installed_name);
  }
#ifdef CONVOY_SOURCE_DIR
  candidates.push_back(std::string(CONVOY_SOURCE_DIR) + "/" + path);
#endif
  for (const auto& c : candidates) {
    if (IsDir(c)) return c;
  }
  return path;
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Status(Code::kInvalidArgument, "an empty path");
  for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    std::string part = at == std::string::npos ? path : path.substr(0, at);
    if (!part.empty() && ::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return Status(Code::kInvalidArgument, "cannot create " + part + ": " + std::strerror(errno));
    }
    if (at == std::string::npos) break;
  }
  if (!IsDir(path)) return Status(Code::kInvalidArgument, path + " exists and is not a folder");
  return Status::Ok();
}

void InitService(const char* service, const char* usage, int* argc, char*** argv) {
  g_service = service;
  gflags::SetUsageMessage(usage);
  gflags::SetVersionString("0.1.0");
  FLAGS_logtostderr = true;
  gflags::ParseCommandLineFlags(argc, argv, true);
  // Connection strings carry credentials: a deployment passes them in the environment, not on
  // the command line, and the broker's TLS files beside them. An explicit flag still wins.
  for (const auto& [flag, env] :
       {std::pair{"amqp_url", "CONVOY_AMQP_URL"}, std::pair{"pg_dsn", "CONVOY_PG_DSN"},
        std::pair{"amqp_ca_file", "CONVOY_AMQP_CA_FILE"},
        std::pair{"amqp_cert_file", "CONVOY_AMQP_CERT_FILE"},
        std::pair{"amqp_key_file", "CONVOY_AMQP_KEY_FILE"}}) {
    gflags::CommandLineFlagInfo info;
    const char* value = std::getenv(env);
    if (value && *value && gflags::GetCommandLineFlagInfo(flag, &info) && info.is_default) {
      if (gflags::SetCommandLineOption(flag, value).empty()) {
        std::fprintf(stderr, "invalid value in %s for --%s\n", env, flag);
        std::exit(2);
      }
    }
  }
  // Data folders given as relative defaults are found the way installed software finds them:
  // from the working directory, else next to the install prefix (<bin>/../share/convoy, as the
  // images lay them out), else in the source tree the binary was built from.
  for (const auto& [flag, installed] :
       {std::pair{"schema_dir", "proto-schemas"}, std::pair{"migrations_dir", "migrations"},
        std::pair{"flows_dir", "flows"}}) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(flag, &info)) continue;
    std::string found = FindDataDir(info.current_value, installed);
    if (found != info.current_value) gflags::SetCommandLineOption(flag, found.c_str());
  }
  google::InitGoogleLogging(service);
  ApplyLogFormat();
  // Block the shutdown signals before any thread starts, so every thread inherits the mask and
  // only WaitForShutdownSignal() receives them. A closed peer must not kill the process.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

const char* ServiceName() { return g_service; }

void SetFlagDefault(const char* flag, const std::string& value) {
  gflags::SetCommandLineOptionWithMode(flag, value.c_str(), gflags::SET_FLAGS_DEFAULT);
}

void WaitForShutdownSignal(const std::function<void()>& on_hangup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
    LOG(INFO) << "service=" << g_service << " event=sighup" << (on_hangup ? "" : " action=ignored");
    if (on_hangup) on_hangup();
  }
  LOG(INFO) << "service=" << g_service << " event=shutdown signal=" << sig;
}

}  // namespace convoy
