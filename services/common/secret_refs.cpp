#include "convoy/secret_refs.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace convoy {

namespace {

constexpr size_t kMaxSecretBytes = 64 << 10;
constexpr size_t kMaxFilesKept = 10000;

std::string Signature(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// The value trimmed, or why it cannot be a bearer token (never showing it).
Result<std::string> Checked(const std::string& ref, std::string_view value) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!value.empty() && space(value.front())) value.remove_prefix(1);
  while (!value.empty() && space(value.back())) value.remove_suffix(1);
  if (value.empty()) return Status(Code::kNotFound, ref + " is empty");
  if (value.size() > kMaxSecretBytes)
    return Status(Code::kInvalidArgument, ref + " is over 64 KiB: is it a token?");
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) {
      return Status(Code::kInvalidArgument,
                    ref +
                        " holds whitespace, a control or a non-ASCII character inside: a "
                        "bearer token is one word");
    }
  }
  return std::string(value);
}

}  // namespace

bool ValidSecretRef(std::string_view ref) {
  if (ref.substr(0, 5) == "file:") return ref.size() > 6 && ref[5] == '/';
  if (ref.substr(0, 4) != "env:" || ref.size() == 4) return false;
  for (size_t i = 4; i < ref.size(); ++i) {
    const char c = ref[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && (i == 4 || c < '0' || c > '9')) return false;
  }
  return true;
}

void SecretRefs::Alias(const std::string& ref, const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  aliases_[ref] = target;
}

void SecretRefs::Set(const std::string& ref, std::string value) {
  std::lock_guard<std::mutex> lock(mu_);
  fixed_[ref] = std::move(value);
}

Result<std::string> SecretRefs::Resolve(const std::string& asked) {
  std::unique_lock<std::mutex> lock(mu_);
  std::string ref = asked;
  if (auto alias = aliases_.find(ref); alias != aliases_.end()) ref = alias->second;
  if (auto fixed = fixed_.find(ref); fixed != fixed_.end()) return Checked(asked, fixed->second);
  if (!ValidSecretRef(ref)) {
    return Status(Code::kInvalidArgument, "'" + ref.substr(0, 5) +
                                              "...' is not a secret reference (env:NAME or "
                                              "file:/absolute/path)");
  }
  if (ref[0] == 'e') {
    lock.unlock();
    const char* value = std::getenv(ref.c_str() + 4);
    if (value == nullptr) return Status(Code::kNotFound, ref + " not set");
    return Checked(ref, value);
  }
  return ReadFileRef(ref, ref.substr(5));
}

// Called with mu_ held: a token file is small, and one read at a time spares the disk.
Result<std::string> SecretRefs::ReadFileRef(const std::string& ref, const std::string& path) {
  const auto now = std::chrono::steady_clock::now();
  auto it = files_.find(path);
  if (it != files_.end() && now - it->second.checked < check_every_) return it->second.value;
  const std::string signature = Signature(path);
  if (it != files_.end() && !signature.empty() && signature == it->second.signature) {
    it->second.checked = now;
    return it->second.value;
  }
  if (it == files_.end()) {
    if (files_.size() >= kMaxFilesKept) files_.clear();
    it = files_.emplace(path, File{}).first;
  }
  File& f = it->second;
  f.signature = signature;
  f.checked = now;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    f.value = Status(Code::kNotFound, ref + " cannot be read: " + std::strerror(errno));
    return f.value;
  }
  std::string text(kMaxSecretBytes + 3, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  f.value = Checked(ref, text);
  return f.value;
}

}  // namespace convoy
