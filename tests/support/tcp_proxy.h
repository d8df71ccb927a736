#pragma once
// A loopback TCP proxy a test can cut: while blocked it drops every open connection and
// refuses new ones, which is what a broker stop or a network partition looks like to a client.
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
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
  // The next client request containing `needle` (a COMMIT, say) is passed to the server (deliver)
  // or swallowed (not), and from then on that connection's replies are held: the server acts, the
  // client hears nothing. cut() says whether it happened; DropHeld() then closes the held
  // connections, as a crash or a failover would (new connections still pass).
  void CutAtRequest(const std::string& needle, bool deliver);
  bool cut() const { return cut_; }
  void DropHeld();

 private:
  void AcceptLoop();
  void Pump(int a, int b);
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> blocked_{false};
  std::string cut_needle_;  // guarded by mu_; empty: not armed
  bool cut_deliver_ = false;
  std::atomic<bool> cut_{false};
  std::set<int> held_;     // upstream fds whose replies are held; guarded by mu_
  std::set<int> dropped_;  // upstream fds whose connections are to be closed; guarded by mu_
  std::thread acceptor_;
  std::mutex mu_;
  std::set<int> open_fds_;
  std::vector<std::thread> pumps_;
};

}  // namespace convoy::test
