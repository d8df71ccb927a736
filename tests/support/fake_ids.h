#pragma once
// Ids a fake hands out, unique per start like the real service's: Meta never gives two messages
// one wamid, Shopify never two products one id, so neither may a fake that restarts against a
// database that kept the ids of its last run (scripts/run.sh, run twice on the same .run/).
#include <chrono>
#include <cstdint>
#include <random>
#include <string>

namespace convoy::fake {

// A random number drawn once per fake instance (random_device mixed with the clock, in case
// the device is deterministic); ids are "<this start>" + "<a counter>".
inline uint64_t StartNonce() {
  std::random_device rd;
  uint64_t x = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  x ^= static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  return x;
}

// StartNonce() as 12 hex digits, for ids that are text.
inline std::string StartTag() {
  static constexpr char kHex[] = "0123456789ABCDEF";
  uint64_t x = StartNonce();
  std::string tag(12, '0');
  for (char& c : tag) {
    c = kHex[x & 0xF];
    x >>= 4;
  }
  return tag;
}

}  // namespace convoy::fake
