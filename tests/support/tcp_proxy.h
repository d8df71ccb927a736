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

 private:
  void AcceptLoop();
  void Pump(int a, int b);
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> blocked_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::thread> pumps_;
};

}  // namespace convoy::test
