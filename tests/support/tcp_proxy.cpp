#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace convoy::test {

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {}

TcpProxy::~TcpProxy() {
  stop_ = true;
  SetBlocked(true);
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (auto& t : pumps_) t.join();
}

bool TcpProxy::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return false;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void TcpProxy::SetBlocked(bool blocked) {
  blocked_ = blocked;
  if (!blocked) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
}

void TcpProxy::HoldReplies() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = open_fds_;  // the upstream sides among them are what Pump checks
}

void TcpProxy::CutAtRequest(const std::string& needle, bool deliver) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_needle_ = needle;
  cut_deliver_ = deliver;
  cut_ = false;
}

void TcpProxy::DropHeld() {
  std::lock_guard<std::mutex> lock(mu_);
  dropped_.insert(held_.begin(),
                  held_.end());  // their pumps close both sides, passing nothing more
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    if (blocked_) {
      ::close(client);
      continue;
    }
    int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(client);
      ::close(upstream);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.insert(client);
    open_fds_.insert(upstream);
    pumps_.emplace_back([this, client, upstream] { Pump(client, upstream); });
  }
}

// Copies both ways until either side closes (or the proxy is cut), then closes both.
void TcpProxy::Pump(int a, int b) {
  char buf[16384];
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  while (!stop_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dropped_.count(b)) break;
      fds[1].events = held_.count(b) ? 0 : POLLIN;
    }
    if (::poll(fds, 2, 100) < 0) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        done = true;
        break;
      }
      if (i == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!cut_needle_.empty() &&
            std::string(buf, static_cast<size_t>(n)).find(cut_needle_) != std::string::npos) {
          cut_needle_.clear();
          held_.insert(b);
          if (!cut_deliver_) n = 0;  // swallowed
          cut_ = true;
        }
      }
      for (ssize_t off = 0; off < n && !done;) {
        // MSG_NOSIGNAL: a peer gone mid-copy (the point of a cut) must not SIGPIPE the test.
        ssize_t w = ::send(fds[1 - i].fd, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) done = true;
        off += w > 0 ? w : 0;
      }
    }
    if (done) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(a);
  open_fds_.erase(b);
  held_.erase(b);
  dropped_.erase(b);
  ::close(a);
  ::close(b);
}

}  // namespace convoy::test
