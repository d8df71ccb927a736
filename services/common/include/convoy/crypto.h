#pragma once
// HMAC-SHA256, SHA-256, base64 and hex, and the two signatures convoy makes: Standard Webhooks
// (v1) for results delivered to a business, and signed, expiring media links (GET /media/).
// crypto.cpp is the only file here that includes OpenSSL.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convoy/status.h"

namespace convoy {

std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes
std::string Sha256Hex(std::string_view data);                         // 64 lowercase hex digits
std::string Base64Encode(std::string_view raw);
Result<std::string> Base64Decode(std::string_view text);  // standard alphabet, padding required
std::string HexEncode(std::string_view raw);
// 32 lowercase hex digits from 16 random bytes (OpenSSL's generator): a dedupe key's or a
// correlation id's unique part.
std::string RandomHexId();
int HexDigitValue(char c);  // 0-15 for [0-9a-fA-F], else -1
// Compares in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Standard Webhooks (https://www.standardwebhooks.com, v1). A secret is "whsec_<base64>"; the key
// is its decoded bytes. The signature of one secret is "v1,<base64 HMAC-SHA256(key,
// "{id}.{timestamp}.{body}")>"; the header carries one per active secret, space-separated, so a
// secret can be rotated with a window in which a receiver may know either.
Result<std::string> WebhookSecretKey(std::string_view secret);
std::string WebhookSignature(const std::vector<std::string>& keys, std::string_view id,
                             int64_t timestamp, std::string_view body);
// A receiver's check: one of the header's v1 signatures matches one of `keys`, and the timestamp is
// within `tolerance_seconds` of `now`.
bool VerifyWebhookSignature(const std::vector<std::string>& keys, std::string_view id,
                            std::string_view timestamp, std::string_view body,
                            std::string_view signature_header, int64_t now,
                            int64_t tolerance_seconds = 300);

// Signed media links: "/media/<name>?expires=<unix seconds>&sig=<hex HMAC-SHA256(secret,
// "<name>.<expires>")>". Whoever holds the link may fetch that one file until it expires, without
// convoy's media token.
std::string MediaLinkSignature(std::string_view secret, std::string_view name, int64_t expires);
std::string MediaLink(const std::string& base_url, std::string_view secret, const std::string& name,
                      int64_t expires);
enum class LinkCheck { kValid, kExpired, kBadSignature };
LinkCheck CheckMediaLink(std::string_view secret, std::string_view name, std::string_view expires,
                         std::string_view signature, int64_t now);

}  // namespace convoy
