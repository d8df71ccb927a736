// The broker's address and TLS settings: the URL list, its redaction for logs, and the checks
// Conn::Open makes before it connects.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "internal.h"

namespace convoy {

std::string RedactAmqpUrl(const std::string& url) {
  if (url.find(',') != std::string::npos) {
    std::string out;
    for (const auto& one : AmqpUrls(url)) out += (out.empty() ? "" : ",") + RedactAmqpUrl(one);
    return out;
  }
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t start = scheme + 3;
  size_t end = url.find('/', start);
  if (end == std::string::npos) end = url.size();
  size_t at = url.rfind('@', end);
  if (at == std::string::npos || at < start) return url;
  size_t colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

namespace amqp_internal {

bool IsTlsUrl(const std::string& url) { return url.rfind("amqps://", 0) == 0; }

}  // namespace amqp_internal

namespace {

using amqp_internal::IsTlsUrl;

Status CheckReadable(const std::string& path, const char* what, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in || in.peek() == std::ifstream::traits_type::eof()) {
    int err = errno;
    return Status(Code::kInvalidArgument,
                  std::string("cannot read the ") + what + " " + path + " (" + flag +
                      "): " + (in ? "the file is empty" : std::strerror(err)));
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> AmqpUrls(const std::string& list) {
  std::vector<std::string> urls;
  size_t at = 0;
  while (at <= list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    std::string one = list.substr(at, end - at);
    const size_t b = one.find_first_not_of(" \t"), e = one.find_last_not_of(" \t");
    if (b != std::string::npos) urls.push_back(one.substr(b, e - b + 1));
    at = end + 1;
  }
  return urls;
}

Status ValidateAmqpOptions(const AmqpOptions& o) {
  const std::vector<std::string> urls = AmqpUrls(o.url);
  if (urls.empty())
    return Status(Code::kInvalidArgument, "no broker URL (--amqp_url, CONVOY_AMQP_URL)");
  for (const auto& u : urls) {
    if (u.rfind("amqp://", 0) != 0 && u.rfind("amqps://", 0) != 0) {
      return Status(Code::kInvalidArgument,
                    "broker URL " + RedactAmqpUrl(u) + " does not start with amqp:// or amqps://");
    }
    // One scheme for every node: a list that mixes them would fall back to plain text when the
    // TLS nodes are down.
    if (IsTlsUrl(u) != IsTlsUrl(urls.front())) {
      return Status(Code::kInvalidArgument,
                    "the broker URLs mix amqp:// and amqps://: every node is reached the same way");
    }
  }
  bool any_file = !o.ca_file.empty() || !o.cert_file.empty() || !o.key_file.empty();
  if (!IsTlsUrl(urls.front()) && any_file) {
    return Status(
        Code::kInvalidArgument,
        "TLS files are set (--amqp_ca_file/--amqp_cert_file/--amqp_key_file) but the broker URL " +
            RedactAmqpUrl(o.url) + " is plain: use amqps:// to connect with TLS");
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status(Code::kInvalidArgument,
                  "a client certificate needs both --amqp_cert_file and --amqp_key_file");
  }
  if (!o.ca_file.empty()) {
    Status s = CheckReadable(o.ca_file, "CA file", "--amqp_ca_file");
    if (!s.ok()) return s;
  }
  if (!o.cert_file.empty()) {
    Status s = CheckReadable(o.cert_file, "client certificate", "--amqp_cert_file");
    if (!s.ok()) return s;
    s = CheckReadable(o.key_file, "client key", "--amqp_key_file");
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace convoy
