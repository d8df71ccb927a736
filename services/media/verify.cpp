#include "verify.h"

#include <openssl/evp.h>

#include <cctype>
#include <vector>

namespace convoy::media {

namespace {

const std::vector<MediaType>& Types() {
  static const auto* types = new std::vector<MediaType>{
      {"image/jpeg", "jpg", Kind::kImage},         {"image/png", "png", Kind::kImage},
      {"image/webp", "webp", Kind::kImage},        {"video/mp4", "mp4", Kind::kVideo},
      {"video/3gpp", "3gp", Kind::kVideo},         {"audio/ogg", "ogg", Kind::kAudio},
      {"audio/mpeg", "mp3", Kind::kAudio},         {"audio/mp4", "m4a", Kind::kAudio},
      {"audio/aac", "aac", Kind::kAudio},          {"audio/amr", "amr", Kind::kAudio},
      {"application/pdf", "pdf", Kind::kDocument},
  };
  return *types;
}

bool StartsWith(std::string_view bytes, std::string_view magic) {
  return bytes.substr(0, magic.size()) == magic;
}

// ISO base media (mp4, 3gp, m4a): a box size, then "ftyp".
bool IsoMedia(std::string_view head) { return head.size() >= 8 && head.substr(4, 4) == "ftyp"; }

}  // namespace

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kImage:
      return "image";
    case Kind::kVideo:
      return "video";
    case Kind::kAudio:
      return "audio";
    case Kind::kDocument:
      return "document";
  }
  return "unknown";
}

std::optional<Kind> KindFromName(std::string_view name) {
  for (Kind k : {Kind::kImage, Kind::kVideo, Kind::kAudio, Kind::kDocument}) {
    if (name == KindName(k)) return k;
  }
  return std::nullopt;
}

size_t SizeLimits::For(Kind k) const {
  switch (k) {
    case Kind::kImage:
      return image;
    case Kind::kVideo:
      return video;
    case Kind::kAudio:
      return audio;
    case Kind::kDocument:
      return document;
  }
  return 0;
}

std::optional<MediaType> AllowedType(std::string_view mime_type) {
  std::string_view base = mime_type.substr(0, mime_type.find(';'));
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  std::string lower;
  for (char c : base) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : Types()) {
    if (t.mime_type == lower) return t;
  }
  return std::nullopt;
}

std::optional<MediaType> TypeForExtension(std::string_view extension) {
  for (const auto& t : Types()) {
    if (t.extension == extension) return t;
  }
  return std::nullopt;
}

bool MagicMatches(const MediaType& type, std::string_view head) {
  const std::string& m = type.mime_type;
  if (m == "image/jpeg") return StartsWith(head, "\xFF\xD8\xFF");
  if (m == "image/png") return StartsWith(head, "\x89PNG\r\n\x1A\n");
  if (m == "image/webp")
    return StartsWith(head, "RIFF") && head.size() >= 12 && head.substr(8, 4) == "WEBP";
  if (m == "video/mp4" || m == "video/3gpp" || m == "audio/mp4") return IsoMedia(head);
  if (m == "audio/ogg") return StartsWith(head, "OggS");
  if (m == "audio/mpeg") {
    return StartsWith(head, "ID3") ||
           (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0xFF &&
            (static_cast<unsigned char>(head[1]) & 0xE0) == 0xE0);
  }
  if (m == "audio/aac") {
    return head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0xFF &&
           (static_cast<unsigned char>(head[1]) & 0xF6) == 0xF0;  // ADTS sync word, layer 0
  }
  if (m == "audio/amr") return StartsWith(head, "#!AMR");
  if (m == "application/pdf") return StartsWith(head, "%PDF-");
  return false;
}

std::string HostileContent(std::string_view head) {
  if (StartsWith(head,
                 "\x7F"
                 "ELF"))
    return "an ELF executable";
  if (StartsWith(head, "MZ")) return "a Windows executable";
  if (StartsWith(head, "#!") && !StartsWith(head, "#!AMR")) return "a script";
  if (StartsWith(head, "PK\x03\x04")) return "a ZIP archive";
  // Markup, after any byte-order mark and white space, in any case.
  size_t i = StartsWith(head, "\xEF\xBB\xBF") ? 3 : 0;
  while (i < head.size() && std::isspace(static_cast<unsigned char>(head[i]))) ++i;
  std::string lower;
  for (char c : head.substr(i, 16))
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* tag :
       {"<!doctype html", "<html", "<head", "<body", "<script", "<svg", "<?xml", "<iframe"}) {
    if (lower.rfind(tag, 0) == 0) return "an HTML page";
  }
  return "";
}

std::string LowerHex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return LowerHex(md, len);
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
    return LowerHex(raw, 32);
  }
  return std::nullopt;
}

Status VerifyMedia(std::string_view mime_type, size_t size, std::string_view head,
                   std::string_view actual_sha256_hex, std::string_view expected_sha256,
                   const SizeLimits& limits) {
  auto type = AllowedType(mime_type);
  if (!type) return Status(Code::kInvalidArgument, "type not allowed: " + std::string(mime_type));
  size_t limit = limits.For(type->kind);
  if (size > limit) {
    return Status(Code::kTooLarge, std::string(KindName(type->kind)) + " of " +
                                       std::to_string(size) + " bytes is over the limit of " +
                                       std::to_string(limit));
  }
  if (!MagicMatches(*type, head)) {
    const std::string what = HostileContent(head);
    return Status(Code::kInvalidArgument, "content does not look like " + type->mime_type +
                                              (what.empty() ? "" : " (it is " + what + ")"));
  }
  auto expected = NormalizeSha256(expected_sha256);
  if (!expected)
    return Status(Code::kInvalidArgument, "malformed sha256: " + std::string(expected_sha256));
  if (actual_sha256_hex != *expected) {
    return Status(Code::kInvalidArgument, "sha256 mismatch: got " + std::string(actual_sha256_hex) +
                                              ", expected " + *expected);
  }
  return Status::Ok();
}

bool IsStoredName(std::string_view name) {
  auto dot = name.find('.');
  if (dot != 64 || name.size() > 64 + 1 + 8) return false;
  for (size_t i = 0; i < 64; ++i) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return TypeForExtension(name.substr(65)).has_value();
}

}  // namespace convoy::media
