#pragma once
// Pure checks on downloaded media: size, allowed type, magic bytes, sha256 (base64 as Meta
// sends it, or hex). No I/O.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "convoy/status.h"

namespace convoy::media {

std::string Sha256Hex(std::string_view bytes);
// The lowercase hex form of a sha256 given as 64 hex digits or 44-character base64.
std::optional<std::string> NormalizeSha256(std::string_view given);
// The file extension for an allowed mime type, or nullopt when the type is not allowed.
std::optional<std::string> ExtensionFor(std::string_view mime_type);
// Permanent failures (kTooLarge, kInvalidArgument) say what is wrong.
Status VerifyMedia(std::string_view bytes, std::string_view mime_type, std::string_view expected_sha256,
                   size_t max_bytes);

}  // namespace convoy::media
