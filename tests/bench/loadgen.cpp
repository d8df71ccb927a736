// convoy-loadgen: an open-loop HTTP/1.1 load generator. Request i is due at start + i/rate and
// its latency is measured from that due time, so a slow server cannot hide queueing by slowing
// the sender (no coordinated omission). Keep-alive connections, one thread each, requests
// dealt round-robin. Prints one RESULT line.
#include <arpa/inet.h>
#include <gflags/gflags.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "convoy/config.h"
#include "convoy/crypto.h"

DEFINE_int32(port, 8080, "Server port on 127.0.0.1");
DEFINE_validator(port, &convoy::ValidatePort);
DEFINE_string(path, "/webhook", "Request path");
DEFINE_int32(rate, 2000, "Requests per second, total");
DEFINE_validator(rate, &convoy::ValidatePositive);
DEFINE_int32(seconds, 10, "Duration");
DEFINE_validator(seconds, &convoy::ValidatePositive);
DEFINE_int32(connections, 32, "Keep-alive connections");
DEFINE_validator(connections, &convoy::ValidatePositive);
DEFINE_string(body_file, "", "POST body (raw bytes)");
DEFINE_string(signature, "", "X-Hub-Signature-256 header value");
DEFINE_string(authorization, "",
              "Authorization header value (e.g. \"Bearer <token>\" to post to the fake Graph API)");
DEFINE_bool(unique, false,
            "Each request its own body: {N} in the body file becomes the request's number, {P} its "
            "business "
            "number (the request's number modulo --numbers, 4 digits) and {T} the current Unix "
            "time, and each "
            "body is signed as Meta signs (HMAC-SHA256 with CONVOY_APP_SECRET)");
DEFINE_int32(numbers, 1, "With --unique: business numbers the requests are spread over ({P})");
DEFINE_validator(numbers, &convoy::ValidatePositive);
DEFINE_int64(first, 0,
             "With --unique: the first request's number ({N}), so that runs against one database "
             "(a warm-up, then the measured run) never repeat each other's senders and messages "
             "(0..10000000000: the bench's senders stay within a phone number's 20 digits)");
static bool ValidateFirst(const char* flag, int64_t v) {
  return convoy::InRange(flag, static_cast<double>(v), 0, 1e10);
}
DEFINE_validator(first, &ValidateFirst);

namespace {
using Clock = std::chrono::steady_clock;

int Connect() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(FLAGS_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads one response; returns its status or -1.
int ReadResponse(int fd, std::string& buf) {
  size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  int status = std::atoi(buf.c_str() + 9);
  size_t length = 0;
  std::string lower = buf.substr(0, header_end);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  auto cl = lower.find("content-length:");
  if (cl != std::string::npos) length = std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
  size_t total = header_end + 4 + length;
  while (buf.size() < total) {
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<size_t>(n));
  }
  buf.erase(0, total);
  return status;
}
}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::ifstream in(FLAGS_body_file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string body = ss.str();
  auto build = [](const std::string& b, const std::string& signature) {
    return "POST " + FLAGS_path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
           (signature.empty() ? "" : "X-Hub-Signature-256: " + signature + "\r\n") +
           (FLAGS_authorization.empty() ? "" : "Authorization: " + FLAGS_authorization + "\r\n") +
           "Content-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  };
  const int64_t total = static_cast<int64_t>(FLAGS_rate) * FLAGS_seconds;
  // One request for all, or (--unique) one each, built before the clock starts.
  std::vector<std::string> requests;
  if (FLAGS_unique) {
    const char* secret = std::getenv("CONVOY_APP_SECRET");
    if (!secret || !*secret) {
      std::fprintf(stderr, "--unique signs each body: set CONVOY_APP_SECRET\n");
      return 2;
    }
    const std::string now = std::to_string(std::time(nullptr));
    requests.reserve(static_cast<size_t>(total));
    for (int64_t i = 0; i < total; ++i) {
      std::string b = body;
      char number[16];
      std::snprintf(number, sizeof number, "%04d", static_cast<int>(i % FLAGS_numbers));
      for (const auto& [key, value] :
           {std::pair<std::string, std::string>{"{N}", std::to_string(FLAGS_first + i)},
            {"{T}", now},
            {"{P}", number}}) {
        for (size_t at = b.find(key); at != std::string::npos; at = b.find(key, at + value.size()))
          b.replace(at, key.size(), value);
      }
      requests.push_back(build(b, "sha256=" + convoy::HexEncode(convoy::HmacSha256(secret, b))));
    }
  } else {
    requests.push_back(build(body, FLAGS_signature));
  }
  const double interval_ns = 1e9 / FLAGS_rate;
  std::vector<std::vector<double>> latencies(static_cast<size_t>(FLAGS_connections));
  std::atomic<int64_t> non2xx{0}, errors{0};
  auto start = Clock::now() + std::chrono::milliseconds(100);
  std::vector<std::thread> threads;
  for (int c = 0; c < FLAGS_connections; ++c) {
    threads.emplace_back([&, c] {
      int fd = Connect();
      std::string buf;
      for (int64_t i = c; i < total; i += FLAGS_connections) {
        auto due = start + std::chrono::nanoseconds(static_cast<int64_t>(i * interval_ns));
        std::this_thread::sleep_until(
            due);  // open loop: the schedule, not the server, sets the pace
        if (fd < 0) fd = Connect();
        int status = -1;
        const std::string& request = requests[FLAGS_unique ? static_cast<size_t>(i) : 0];
        if (fd >= 0 &&
            write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
          status = ReadResponse(fd, buf);
        }
        if (status < 0) {
          ++errors;
          if (fd >= 0) close(fd);
          fd = -1;
          buf.clear();
          continue;
        }
        if (status / 100 != 2) ++non2xx;
        latencies[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - due).count());
      }
      if (fd >= 0) close(fd);
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0
                       : all[std::min(all.size() - 1, static_cast<size_t>(p / 100 * all.size()))];
  };
  std::printf(
      "RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f requests=%zu non2xx=%lld "
      "socket_errors=%lld\n",
      all.size() / elapsed, pct(50), pct(99), pct(99.9), all.empty() ? 0 : all.back(), all.size(),
      static_cast<long long>(non2xx.load()), static_cast<long long>(errors.load()));
  return errors.load() == 0 ? 0 : 1;
}
