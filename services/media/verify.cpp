#include "verify.h"

#include <openssl/evp.h>

#include <cctype>

namespace convoy::media {

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kDigits[md[i] >> 4];
    out += kDigits[md[i] & 15];
  }
  return out;
}

std::optional<std::string> NormalizeSha256(std::string_view given) {
  if (given.size() == 64) {
    std::string hex;
    for (char c : given) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
      hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return hex;
  }
  if (given.size() == 44) {
    unsigned char raw[48];
    int n = EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(given.data()), 44);
    if (n != 33 || given[43] != '=') return std::nullopt;  // 32 bytes + 1 byte of padding
    static const char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (int i = 0; i < 32; ++i) {
      hex += kDigits[raw[i] >> 4];
      hex += kDigits[raw[i] & 15];
    }
    return hex;
  }
  return std::nullopt;
}

std::optional<std::string> ExtensionFor(std::string_view mime_type) {
  if (mime_type == "image/jpeg") return "jpg";
  if (mime_type == "image/png") return "png";
  if (mime_type == "image/webp") return "webp";
  return std::nullopt;
}

namespace {
bool StartsWith(std::string_view bytes, std::string_view magic) { return bytes.substr(0, magic.size()) == magic; }
}  // namespace

Status VerifyMedia(std::string_view bytes, std::string_view mime_type, std::string_view expected_sha256,
                   size_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return Status(Code::kTooLarge, std::to_string(bytes.size()) + " bytes over the limit of " + std::to_string(max_bytes));
  }
  if (!ExtensionFor(mime_type)) return Status(Code::kInvalidArgument, "type not allowed: " + std::string(mime_type));
  bool magic_ok = (mime_type == "image/jpeg" && StartsWith(bytes, "\xFF\xD8\xFF")) ||
                  (mime_type == "image/png" && StartsWith(bytes, "\x89PNG\r\n\x1A\n")) ||
                  (mime_type == "image/webp" && StartsWith(bytes, "RIFF") && bytes.substr(8, 4) == "WEBP");
  if (!magic_ok) return Status(Code::kInvalidArgument, "content does not look like " + std::string(mime_type));
  auto expected = NormalizeSha256(expected_sha256);
  if (!expected) return Status(Code::kInvalidArgument, "malformed sha256: " + std::string(expected_sha256));
  std::string actual = Sha256Hex(bytes);
  if (actual != *expected) return Status(Code::kInvalidArgument, "sha256 mismatch: got " + actual + ", expected " + *expected);
  return Status::Ok();
}

}  // namespace convoy::media
