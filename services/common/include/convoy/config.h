#pragma once
// Configuration helpers: flag validators that name the flag, and secrets that come from an
// environment variable or a file, never from the command line and never into a log.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "convoy/status.h"

namespace convoy {

// gflags validators. Each prints "invalid value for --NAME: why" and returns false.
bool ValidatePort(const char* flag, int32_t value);         // 0..65535 (0: pick a free port)
bool ValidateMetricsPort(const char* flag, int32_t value);  // -1 (none of its own) or a port
bool ValidatePositive(const char* flag, int32_t value);     // > 0
// lo <= value <= hi, else a message naming the flag and the range: for range validators.
bool InRange(const char* flag, double value, double lo, double hi);
bool ValidateNonEmpty(const char* flag, const std::string& value);
bool ValidateAmqpUrl(const char* flag, const std::string& value);
bool ValidateHttpUrl(const char* flag, const std::string& value);

// A secret: the file named by file_path if non-empty (trailing newline stripped), else the
// environment variable env_name. Empty or missing is an error that names both sources.
Result<std::string> LoadSecret(const std::string& env_name, const std::string& file_path);

// A data folder (schemas, migrations, flows) named by a relative path: as given when it exists
// from the working directory, else <binary>/../share/convoy/<installed_name> (the installed
// layout), else the source tree the binary was built from; the path unchanged if none exists.
// InitService applies it to --schema_dir, --migrations_dir and --flows_dir.
std::string FindDataDir(const std::string& path, const std::string& installed_name);
// mkdir -p.
Status MakeDirs(const std::string& path, mode_t mode = 0750);

// Parses the command line (gflags), sets up glog to stderr, names the service in every log
// line. Exits non-zero with a message naming the flag on a bad value.
void InitService(const char* service, const char* usage, int* argc, char*** argv);
// Changes a flag's default (shown by --help); call before InitService.
void SetFlagDefault(const char* flag, const std::string& value);
const char* ServiceName();

// Blocks until SIGINT or SIGTERM arrives.
// Waits for SIGINT or SIGTERM. SIGHUP (blocked in every thread too) calls on_hangup, when given,
// and waits on; without one it is ignored.
void WaitForShutdownSignal(const std::function<void()>& on_hangup = nullptr);

}  // namespace convoy
