#pragma once
// RFC 3339 UTC times as convoy writes them in messages and bodies.
#include <cstdint>
#include <string>

namespace convoy {

// "2026-11-30T18:00:00Z" for seconds since the epoch.
std::string Rfc3339(int64_t seconds);
// Seconds since the epoch of "2026-11-30T18:00:00Z" or "2026-11-30T18:00:00.123Z" (as ingress
// stamps received_at); 0 when it is not one.
double ParseRfc3339(const std::string& text);

}  // namespace convoy
