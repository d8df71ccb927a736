#pragma once
// Secrets named by reference, never stored in clear: `env:NAME` (the service's environment) or
// `file:/absolute/path` (a file, such as a mounted Kubernetes Secret). The numbers registry keeps
// each number's Graph token this way (deploy/postgres/0017_numbers.sql, graph_token_ref).
//
// A file is read again when it changes: at most every `check_every` it is stat()ed, and read when
// its inode, size or modification time differ (a Kubernetes Secret volume swaps a symlink), so a
// rotated token takes effect without a restart. The value is trimmed of surrounding whitespace;
// an empty one, one over 64 KiB or one with whitespace or a control character inside is an error.
// Errors name the reference, never the value.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "convoy/status.h"

namespace convoy {

// env:NAME (NAME: a letter or _, then letters, digits, _) or file:/absolute/path.
bool ValidSecretRef(std::string_view ref);

class SecretRefs {
 public:
  explicit SecretRefs(std::chrono::steady_clock::duration check_every = std::chrono::seconds(5))
      : check_every_(check_every) {}
  // The secret `ref` names. kInvalidArgument: not a reference, or a value no bearer token can be;
  // kNotFound: "env:X not set", "file:/p cannot be read: <why>", "file:/p is empty".
  Result<std::string> Resolve(const std::string& ref);
  // `ref` resolves as `target` does: env:CONVOY_GRAPH_TOKEN as --graph_token_file's file:.
  void Alias(const std::string& ref, const std::string& target);
  // `ref` resolves to `value`: a secret the service was handed another way (tests, a flag's file
  // read once).
  void Set(const std::string& ref, std::string value);

 private:
  struct File {
    std::string signature;  // inode:size:mtime when read; "" when it could not be stat()ed
    Result<std::string> value = Status(Code::kNotFound, "not read yet");
    std::chrono::steady_clock::time_point checked;
  };
  Result<std::string> ReadFileRef(const std::string& ref, const std::string& path);
  std::chrono::steady_clock::duration check_every_;
  std::mutex mu_;
  std::map<std::string, std::string> aliases_, fixed_;
  std::map<std::string, File>
      files_;  // by path; bounded (cleared past 10,000: far more than numbers served)
};

}  // namespace convoy
