#include "convoy/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>

namespace convoy {

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<char*>(out), len));
}

std::string Base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0)
    return Status(Code::kInvalidArgument, "not base64: length is not a multiple of 4");
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
      return Status(Code::kInvalidArgument, "not base64: unexpected character");
    }
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Status(Code::kInvalidArgument, "not base64");
  size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string RandomHexId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof(raw));
  return HexEncode(std::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
}

std::string HexEncode(std::string_view raw) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> WebhookSecretKey(std::string_view secret) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) != kPrefix) {
    return Status(Code::kInvalidArgument, "a webhook secret is \"whsec_<base64>\"");
  }
  auto key = Base64Decode(secret.substr(kPrefix.size()));
  if (!key.ok())
    return Status(Code::kInvalidArgument,
                  "a webhook secret is \"whsec_<base64>\": " + key.status().message());
  if (key->size() < 24 || key->size() > 64) {
    return Status(Code::kInvalidArgument,
                  "a webhook secret's key is 24 to 64 bytes (Standard Webhooks)");
  }
  return key;
}

std::string WebhookSignature(const std::vector<std::string>& keys, std::string_view id,
                             int64_t timestamp, std::string_view body) {
  std::string content = std::string(id) + "." + std::to_string(timestamp) + "." + std::string(body);
  std::string out;
  for (const auto& key : keys) {
    if (!out.empty()) out += ' ';
    out += "v1," + Base64Encode(HmacSha256(key, content));
  }
  return out;
}

bool VerifyWebhookSignature(const std::vector<std::string>& keys, std::string_view id,
                            std::string_view timestamp, std::string_view body,
                            std::string_view header, int64_t now, int64_t tolerance_seconds) {
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || end != timestamp.data() + timestamp.size()) return false;
  if (ts < now - tolerance_seconds || ts > now + tolerance_seconds) return false;
  std::string content = std::string(id) + "." + std::string(timestamp) + "." + std::string(body);
  size_t pos = 0;
  while (pos < header.size()) {
    size_t space = header.find(' ', pos);
    std::string_view one =
        header.substr(pos, space == std::string_view::npos ? std::string_view::npos : space - pos);
    pos = space == std::string_view::npos ? header.size() : space + 1;
    if (one.substr(0, 3) != "v1,") continue;
    for (const auto& key : keys) {
      if (ConstantTimeEquals(one.substr(3), Base64Encode(HmacSha256(key, content)))) return true;
    }
  }
  return false;
}

std::string MediaLinkSignature(std::string_view secret, std::string_view name, int64_t expires) {
  return HexEncode(HmacSha256(secret, std::string(name) + "." + std::to_string(expires)));
}

std::string MediaLink(const std::string& base_url, std::string_view secret, const std::string& name,
                      int64_t expires) {
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/media/" + name + "?expires=" + std::to_string(expires) +
         "&sig=" + MediaLinkSignature(secret, name, expires);
}

LinkCheck CheckMediaLink(std::string_view secret, std::string_view name, std::string_view expires,
                         std::string_view signature, int64_t now) {
  int64_t at = 0;
  auto [end, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), at);
  if (ec != std::errc() || end != expires.data() + expires.size() || secret.empty())
    return LinkCheck::kBadSignature;
  if (!ConstantTimeEquals(signature, MediaLinkSignature(secret, name, at)))
    return LinkCheck::kBadSignature;
  return at < now ? LinkCheck::kExpired : LinkCheck::kValid;
}

}  // namespace convoy
