#pragma once
// The whole convoy stack for e2e and fault tests: the four services as child processes on free
// ports, against a vhost and a database of the stack's own, with the fake Graph API in-process.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/http.h"
#include "fake_graph.h"
#include "testsupport.h"

namespace convoy::test {

inline constexpr const char* kAppSecret = "test-app-secret";
inline constexpr const char* kGraphToken = "test-graph-token";
inline constexpr const char* kMediaToken = "test-media-token";
inline constexpr const char* kMediaLinkSecret = "test-media-link-secret";
inline constexpr const char* kAdminToken = "test-admin-token";

class Stack {
 public:
  struct Service {
    std::string name;
    int port = 0;
    ChildProcess process;
    std::string log;
  };

  // pg_port_override: service -> port its database connection goes to instead (a TcpProxy);
  // extra_args: service kind -> flags added to its command line.
  explicit Stack(const std::string& prefix, std::map<std::string, int> pg_port_override = {},
                 std::map<std::string, std::vector<std::string>> extra_args = {});
  ~Stack();  // SIGTERM to every service; each must exit within 20 s

  bool WaitReady(const std::string& service, std::chrono::seconds deadline);
  // (re)starts one service on its port; "conversation#2" is a second replica of conversation.
  void Launch(const std::string& service);
  void Kill(const std::string& service);  // SIGKILL and reap

  std::string Url(const std::string& service, const std::string& path);
  HttpResponse PostWebhook(const std::string& body, const std::string& signature);
  // A call to conversation's /v1/ API with the admin token; a failed call is a test failure.
  HttpResponse Api(const std::string& method, const std::string& path,
                   const std::string& body = "");
  double Metric(const std::string& service, const std::string& series);
  // Waits up to 10 s for the service to log the correlation id (a line may follow the effect).
  bool Logged(const std::string& service, const std::string& correlation);

  // text.json as a new update: its id stamped with "<tag><i>x", its text "<tag> message <i>",
  // sent by one of `senders` numbers (several conversations at once).
  std::string TextUpdate(const std::string& tag, int i, int senders = 1) const;
  int PostUpdate(const std::string& body);  // signed as Meta signs; the HTTP status
  // One message from wa_id (test::TextMessage, ImageMessage, ...) with a new wamid, sent at
  // `timestamp` (0: now); the HTTP status.
  int PostMessage(const std::string& wa_id, const std::string& message, int64_t timestamp = 0);
  // Waits until `to` was sent `count` messages in all; false on timeout.
  bool WaitSends(const std::string& to, size_t count,
                 std::chrono::seconds deadline = std::chrono::seconds(30));
  // Media ids "<prefix>0".."<prefix>{n-1}" served by the fake Graph API (the fixture photos in
  // turn).
  std::vector<std::string> RegisterPhotos(const std::string& prefix, int n);
  // SELL, an email and a description with every field from wa_id, each answered in turn: the
  // conversation then waits for photos (3 replies sent).
  void StartListing(const std::string& wa_id);
  // What the listing flow says to the SELL, the email and the description of StartListing.
  static const std::vector<std::string>& ListingOpening();
  // Nothing left to deliver: the inbound, event and send queues are empty.
  bool Drained(std::chrono::seconds deadline);
  // Every update 0..n-1 of TextUpdate(tag, ...) was answered exactly once, and nothing was parked.
  void ExpectEachAnsweredOnce(const std::string& tag, int n);

  TestVhost vhost;
  TestDatabase db;
  fake::FakeGraph graph{kGraphToken};
  std::string dir;
  std::map<std::string, std::unique_ptr<Service>> services;
  std::map<std::string, int> pg_port_override;
  std::map<std::string, std::vector<std::string>> extra_args;

 private:
  std::atomic<uint64_t> posts_{0};  // webhooks posted (spread over the ingress replicas)
};

}  // namespace convoy::test
