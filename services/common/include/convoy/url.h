#pragma once
// Pieces of URLs a service builds for a call of its own (a query string of decoded parameters).
#include <string>
#include <string_view>

namespace convoy {

// Percent-encodes everything but RFC 3986's unreserved characters (letters, digits, - _ . ~): a
// query parameter's name or value, or a path segment.
std::string UrlEncode(std::string_view s);

}  // namespace convoy
