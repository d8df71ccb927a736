// Security: amqps:// against a real RabbitMQ TLS listener. amqp_tls_test.sh starts a broker node
// of the test's own with a throw-away CA (scripts/infra.sh, CONVOY_AMQP_TLS_PORT), makes a second
// CA that did not sign the broker, and passes both here in the environment.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/http.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

using namespace std::chrono_literals;

std::string Required(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    ADD_FAILURE()
        << name
        << " is not set: run this test through services/common/amqp_tls_test.sh (ctest does)";
    return "";
  }
  return v;
}

std::string TlsPort() { return Required("CONVOY_TLS_TEST_AMQPS_PORT"); }
std::string PlainPort() { return Required("CONVOY_TLS_TEST_AMQP_PORT"); }
std::string RightCa() { return Required("CONVOY_TLS_TEST_CA_FILE"); }
std::string WrongCa() { return Required("CONVOY_TLS_TEST_WRONG_CA_FILE"); }

AmqpOptions Amqps(const std::string& host, const std::string& port, const std::string& ca,
                  const std::string& name) {
  AmqpOptions o{"amqps://guest:guest@" + host + ":" + port + "/%2f", test::UniqueName(name)};
  o.ca_file = ca;
  o.connect_timeout = 5000ms;
  return o;
}

// The broker's own view of its client connections (management API).
std::string BrokerConnections() {
  HttpClientRequest r;
  r.url = Required("CONVOY_TLS_TEST_MGMT_URL") +
          "/api/connections?columns=name,ssl,ssl_protocol,client_properties";
  r.headers["Authorization"] = "Basic Z3Vlc3Q6Z3Vlc3Q=";  // guest:guest
  r.max_response_bytes = 4 << 20;
  auto resp = HttpFetch(r);
  return resp.ok() && resp->status == 200 ? resp->body : "";
}

// What the broker says of the connection whose client named itself `name`: "ssl=<bool>
// protocol=<tls version>", or "" when the broker has no such connection.
std::string ConnectionEntry(const std::string& connections, const std::string& name) {
  rapidjson::Document doc;
  if (doc.Parse(connections.c_str()).HasParseError() || !doc.IsArray()) return "";
  for (const auto& c : doc.GetArray()) {
    if (!c.IsObject() || !c.HasMember("client_properties")) continue;
    const auto& props = c["client_properties"];
    if (!props.IsObject() || !props.HasMember("connection_name") ||
        !props["connection_name"].IsString())
      continue;
    if (props["connection_name"].GetString() != name) continue;
    bool ssl = c.HasMember("ssl") && c["ssl"].IsBool() && c["ssl"].GetBool();
    std::string protocol = c.HasMember("ssl_protocol") && c["ssl_protocol"].IsString()
                               ? c["ssl_protocol"].GetString()
                               : "";
    return "ssl=" + std::string(ssl ? "true" : "false") + " protocol=" + protocol;
  }
  return "";
}

TEST(AmqpTls, PublishesAndConsumesOverAVerifiedTlsConnection) {
  AmqpOptions o = Amqps("localhost", TlsPort(), RightCa(), "tls-test");
  Publisher pub(o);
  pub.Start();
  ASSERT_TRUE(pub.WaitConnected(20s)) << "no amqps connection with the broker's own CA";
  constexpr int kCount = 200;
  std::atomic<int> consumed{0};
  Consumer consumer(
      ConsumerOptions{o, queues::kOutboundSend, 32, 5},
      [&](const Delivery& d) {
        if (d.body.rfind("over-tls-", 0) == 0) ++consumed;
        return Disposition::Ack();
      },
      &pub);
  consumer.Start();
  auto started = std::chrono::steady_clock::now();
  PublishBatch batch;
  for (int i = 0; i < kCount; ++i) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queues::kOutboundSend;
    m.body = "over-tls-" + std::to_string(i);
    pub.Publish(std::move(m), batch.Add());
  }
  ASSERT_TRUE(batch.Wait(std::chrono::steady_clock::now() + 30s).ok());
  ASSERT_TRUE(test::WaitUntil([&] { return consumed.load() == kCount; }, 30s))
      << "consumed " << consumed.load();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  std::printf("amqps: %d messages published (confirmed) and consumed in %lld ms\n", kCount,
              static_cast<long long>(ms));
  // The broker agrees: the connection is TLS (1.2 or later).
  std::string entry;
  ASSERT_TRUE(test::WaitUntil(
      [&] { return !(entry = ConnectionEntry(BrokerConnections(), o.name)).empty(); }, 15s))
      << BrokerConnections();
  EXPECT_NE(entry.find("ssl=true"), std::string::npos) << entry;
  EXPECT_TRUE(entry.find("tlsv1.3") != std::string::npos ||
              entry.find("tlsv1.2") != std::string::npos)
      << entry;
  consumer.Stop();
  pub.Stop();
}

TEST(AmqpTls, ABrokerCertificateFromAnotherCaIsRefusedWithACertificateError) {
  AmqpOptions o = Amqps("localhost", TlsPort(), WrongCa(), "tls-wrong-ca");
  AmqpAdmin admin;
  Status s = admin.Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("certificate did not verify"), std::string::npos) << s.ToString();
  // The broker sends its CA along with its certificate: OpenSSL then names the untrusted root.
  EXPECT_TRUE(s.message().find("self-signed certificate in certificate chain") !=
                  std::string::npos ||
              s.message().find("unable to get local issuer certificate") != std::string::npos)
      << s.ToString();
  EXPECT_EQ(s.message().find("guest:guest"), std::string::npos)
      << "the password leaked: " << s.ToString();
  std::printf("wrong CA: %s\n", s.ToString().c_str());
  // A publisher keeps refusing (no fallback to plain, no login): the broker never sees it.
  Publisher pub(o);
  pub.Start();
  EXPECT_FALSE(pub.WaitConnected(3s));
  pub.Stop();
  EXPECT_EQ(ConnectionEntry(BrokerConnections(), o.name), "");
}

TEST(AmqpTls, NoCaFileMeansTheSystemTrustStoreNeverNoVerification) {
  AmqpAdmin admin;
  Status s = admin.Open(Amqps("localhost", TlsPort(), "", "tls-system-store"));
  ASSERT_FALSE(s.ok());
  std::printf("system trust store: %s\n", s.ToString().c_str());
  EXPECT_NE(s.message().find("certificate did not verify"), std::string::npos) << s.ToString();
}

TEST(AmqpTls, TheBrokersNameIsChecked) {
  // The certificate names localhost (DNS) and 127.0.0.1 (IP); rabbitmq-c 0.11 matches DNS names
  // only, so the address is refused with a message that says what to do.
  AmqpAdmin admin;
  Status s = admin.Open(Amqps("127.0.0.1", TlsPort(), RightCa(), "tls-by-address"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("hostname"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("DNS name"), std::string::npos) << s.ToString();
  std::printf("by address: %s\n", s.ToString().c_str());
}

TEST(AmqpTls, AmqpsToAPlainListenerFailsAndNeverFallsBackToPlain) {
  AmqpOptions o = Amqps("localhost", PlainPort(), RightCa(), "tls-to-plain");
  AmqpAdmin admin;
  Status s = admin.Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("SSL"), std::string::npos) << s.ToString();
  std::printf("amqps to the plain port: %s\n", s.ToString().c_str());
  EXPECT_EQ(ConnectionEntry(BrokerConnections(), o.name), "");
}

TEST(AmqpTls, AnUnreadableCaFileIsRefusedBeforeConnecting) {
  AmqpAdmin admin;
  Status s = admin.Open(Amqps("localhost", TlsPort(), "/nonexistent/ca.pem", "tls-no-ca-file"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("--amqp_ca_file"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace convoy
