#pragma once
// Pure checks on media: the allow-list of types with their extension, kind and magic bytes,
// Meta's size limit per kind, and sha256 (base64 as Meta sends it, or hex). No I/O.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "convoy/status.h"

namespace convoy::media {

enum class Kind { kImage, kVideo, kAudio, kDocument };
const char* KindName(Kind k);
// The kind a name stands for ("image", "document", "video", "audio"), as flows and media.fetch
// spell it, or nullopt.
std::optional<Kind> KindFromName(std::string_view name);

struct MediaType {
  std::string mime_type, extension;
  Kind kind;
};
// The allowed type for a mime type (parameters such as "; codecs=opus" ignored), or nullopt.
std::optional<MediaType> AllowedType(std::string_view mime_type);
// The allowed type for a stored file's extension, or nullopt.
std::optional<MediaType> TypeForExtension(std::string_view extension);
// Whether the first bytes of a file are those of the type (at least 16 bytes, or the whole file).
bool MagicMatches(const MediaType& type, std::string_view head);
// What first bytes that match no allowed type show they are, for the reason (never the user):
// "an HTML page", "an ELF executable", "a Windows executable", "a script", "a ZIP archive", or "".
std::string HostileContent(std::string_view head);

// Meta's limits per kind (images 5 MB, video and audio 16 MB, documents 100 MB), as flags.
struct SizeLimits {
  size_t image = 5 * 1024 * 1024, video = 16 * 1024 * 1024, audio = 16 * 1024 * 1024,
         document = 100 * 1024 * 1024;
  size_t For(Kind k) const;
};

std::string Sha256Hex(std::string_view bytes);
std::string LowerHex(const unsigned char* bytes, size_t n);
// The lowercase hex form of a sha256 given as 64 hex digits or 44-character base64.
std::optional<std::string> NormalizeSha256(std::string_view given);

// The whole check of a downloaded file given its size, first bytes and sha256 (hex): allowed
// type, within the kind's limit, magic bytes, hash. Failures are permanent (kTooLarge,
// kInvalidArgument) and say what is wrong.
Status VerifyMedia(std::string_view mime_type, size_t size, std::string_view head,
                   std::string_view actual_sha256_hex, std::string_view expected_sha256,
                   const SizeLimits& limits);

// A stored file's name: "<64 lowercase hex>.<allowed extension>", and nothing else.
bool IsStoredName(std::string_view name);

}  // namespace convoy::media
