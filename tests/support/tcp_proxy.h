#pragma once
// A loopback TCP proxy a test can cut: while blocked it drops every open connection and
// refuses new ones, which is what a broker stop or a network partition looks like to a client.
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace convoy::test {

class TcpProxy {
 public:
  TcpProxy(int target_port);
  ~TcpProxy();
  bool Start();
  int port() const { return port_; }
  void SetBlocked(bool blocked);
  // The connections open now stop passing what the server sends (held in the kernel, the
  // client's requests still go through): a stuck broker channel, as the client sees it. New
  // connections are not held.
  void HoldReplies();

 private:
  void AcceptLoop();
  void Pump(int a, int b);
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> blocked_{false};
  std::set<int> held_;  // upstream fds whose replies are held; guarded by mu_
  std::thread acceptor_;
  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::thread> pumps_;
};

}  // namespace convoy::test
