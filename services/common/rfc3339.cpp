#include "convoy/rfc3339.h"

#include <cstdio>
#include <ctime>

namespace convoy {

std::string Rfc3339(int64_t seconds) {
  std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double ParseRfc3339(const std::string& text) {
  std::tm t{};
  int ms = 0;
  char zone = 0;
  int n = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &t.tm_year, &t.tm_mon, &t.tm_mday,
                      &t.tm_hour, &t.tm_min, &t.tm_sec, &ms);
  if (n == 6) {
    ms = 0;
    if (std::sscanf(text.c_str(), "%*d-%*d-%*dT%*d:%*d:%*d%c", &zone) != 1 || zone != 'Z') return 0;
  } else if (n != 7) {
    return 0;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<double>(timegm(&t)) + ms / 1000.0;
}

}  // namespace convoy
