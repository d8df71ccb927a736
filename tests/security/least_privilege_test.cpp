// Each part of convoy holds only the keys it needs: every part's broker user (topology.h
// BrokerGrants) and database role (deploy/postgres/0014_service_roles.sql) is tried against a
// real RabbitMQ and PostgreSQL, with what it must be able to do and what it must not.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "convoy/amqp.h"
#include "convoy/amqp_admin.h"
#include "convoy/pg.h"
#include "convoy/topology.h"
#include "testsupport.h"

namespace convoy {
namespace {

struct BrokerCase {
  std::string part;
  std::vector<std::string> may_consume, may_not_consume;
  // exchange, routing key
  std::vector<std::pair<std::string, std::string>> may_publish, may_not_publish;
};

class BrokerUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto declared = UpgradeTopology(AmqpOptions{vhost_.url(), "least-privilege-topology"});
    ASSERT_TRUE(declared.ok()) << declared.status().ToString();
  }
  // A fresh connection as the part's user: a refusal closes the channel, so one probe each.
  Status Probe(const std::string& part, const std::function<Status(AmqpAdmin&)>& probe) {
    AmqpAdmin admin;
    AmqpOptions options{vhost_.PartUrl(part), "probe-" + part};
    options.declare_topology = false;
    Status s = admin.Open(options);
    return s.ok() ? probe(admin) : s;
  }
  test::TestVhost vhost_{"least_privilege"};
};

bool Refused(const Status& s) {
  return !s.ok() && s.message().find("403 ACCESS_REFUSED") != std::string::npos;
}

TEST_F(BrokerUsers, EachPartDoesItsWorkAndIsRefusedEverythingElse) {
  // conversation.inbound is consumed in partitions: the first and the last.
  const std::string first_partition = PartitionName(queues::kConversationInbound, 0);
  const std::string last_partition =
      PartitionName(queues::kConversationInbound, kConversationInboundPartitions - 1);
  const std::vector<BrokerCase> cases = {
      {"ingress",
       {},
       {first_partition, queues::kOutboundStatus},
       {{exchanges::kInbound, "message"}},
       {{exchanges::kCommands, queues::kOutboundSend},
        {exchanges::kEvents, "media.stored"},
        {"", queues::kOutboundSend}}},
      {"conversation",
       {first_partition, last_partition, queues::kConversationEvents, queues::kFlowCompleted},
       {queues::kOutboundSend, queues::kMediaFetch, "conversation.inbound.dlq"},
       {{exchanges::kCommands, queues::kOutboundSend},
        {exchanges::kEvents, "flow.completed"},
        {exchanges::kRetry, "conversation.events.delay.1s"},
        {exchanges::kDlx, "conversation.inbound"}},
       {{exchanges::kInbound, "message"}, {"", queues::kOutboundSend}}},
      {"media",
       {queues::kMediaFetch, queues::kMediaUpload},
       {queues::kOutboundSend, queues::kOutboundStatus, queues::kOutboundDeliver,
        queues::kOutboundExtract, first_partition},
       {{exchanges::kEvents, "media.stored"}, {exchanges::kRetry, "media.fetch.delay.1s"}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "message"}}},
      {"outbound",
       {queues::kOutboundSend, queues::kOutboundStatus, queues::kOutboundDeliver,
        queues::kOutboundExtract},
       {queues::kMediaFetch, first_partition, "outbound.send.dlq"},
       {{exchanges::kEvents, "outbound.sent"}, {exchanges::kDlx, queues::kOutboundSend}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "status"}}},
      {"ops",
       {"outbound.send.dlq", "conversation.inbound.dlq"},
       {queues::kOutboundSend, first_partition},
       {{"", "outbound.send.dlq"}},
       {{exchanges::kCommands, queues::kOutboundSend}, {exchanges::kInbound, "message"}}},
  };
  int checked = 0;
  for (const auto& c : cases) {
    for (const auto& q : c.may_consume) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryConsume(q); });
      EXPECT_TRUE(s.ok()) << c.part << " must consume " << q << ": " << s.ToString();
      ++checked;
    }
    for (const auto& q : c.may_not_consume) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryConsume(q); });
      EXPECT_TRUE(Refused(s)) << c.part << " must not consume " << q << ": " << s.ToString();
      ++checked;
    }
    for (const auto& [ex, key] : c.may_publish) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryPublish(ex, key); });
      EXPECT_TRUE(s.ok()) << c.part << " must publish to '" << ex << "': " << s.ToString();
      ++checked;
    }
    for (const auto& [ex, key] : c.may_not_publish) {
      Status s = Probe(c.part, [&](AmqpAdmin& a) { return a.TryPublish(ex, key); });
      EXPECT_TRUE(Refused(s)) << c.part << " must not publish to '" << ex << "': " << s.ToString();
      ++checked;
    }
    // No service declares: the topology step does (a queue of its own, or convoy's own again).
    Status s = Probe(c.part, [&](AmqpAdmin& a) {
      return a.DeclareQueue({"intruder." + c.part, {}, {}});
    });
    EXPECT_TRUE(Refused(s)) << c.part << " must not declare a queue: " << s.ToString();
    s = Probe(c.part, [&](AmqpAdmin& a) {
      return a.DeclareExchange({exchanges::kInbound, "direct"});
    });
    EXPECT_TRUE(Refused(s)) << c.part << " must not declare an exchange: " << s.ToString();
    checked += 2;
  }
  std::cout << "[ broker   ] " << checked << " permission checks over " << cases.size()
            << " parts\n";
}

TEST_F(BrokerUsers, TheScalerSeesQueueDepthsAndNothingElse) {
  // KEDA's RabbitMQ trigger (k8s/overlays/prod autoscaling.yaml) reads a work queue's depth with
  // a passive declare; its user may neither consume, publish nor declare.
  const std::string partition = PartitionName(queues::kConversationInbound, 0);
  for (const std::string& queue :
       {partition, std::string(queues::kMediaFetch), std::string(queues::kOutboundSend)}) {
    Status s = Probe("scaler", [&](AmqpAdmin& a) {
      auto state = a.Inspect(queue);
      return state.ok() && !state->exists ? Status(Code::kNotFound, "not found") : state.status();
    });
    EXPECT_TRUE(s.ok()) << queue << ": " << s.ToString();
    s = Probe("scaler", [&](AmqpAdmin& a) { return a.TryConsume(queue); });
    EXPECT_TRUE(Refused(s)) << "the scaler must not consume " << queue << ": " << s.ToString();
  }
  Status s =
      Probe("scaler", [&](AmqpAdmin& a) { return a.TryPublish(exchanges::kInbound, "message"); });
  EXPECT_TRUE(Refused(s)) << s.ToString();
  s = Probe("scaler", [&](AmqpAdmin& a) { return a.DeclareQueue({"intruder.scaler", {}, {}}); });
  EXPECT_TRUE(Refused(s)) << s.ToString();
}

TEST_F(BrokerUsers, EveryPartWithAUserHasACase) {
  // A part added to BrokerGrants without a row above would go untested.
  std::vector<std::string> parts;
  for (const auto& g : BrokerGrants()) parts.push_back(g.part);
  EXPECT_EQ(parts, (std::vector<std::string>{"ingress", "conversation", "media", "outbound", "ops",
                                             "scaler", "topology"}));
}

// ---------------------------------------------------------------------------------------------

struct RoleCase {
  std::string role;
  std::vector<std::string> may, may_not;
};

class DatabaseRoles : public ::testing::Test {
 protected:
  void SetUp() override {
    auto owner = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(owner.ok()) << owner.status().ToString();
    Status s = RunMigrations(**owner, test::SourcePath("deploy/postgres"));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  test::TestDatabase db_{"least_privilege"};
};

TEST_F(DatabaseRoles, EachServiceRoleTouchesItsTablesAndNothingElse) {
  const std::vector<RoleCase> cases = {
      {"convoy_conversation",
       {"SELECT count(*) FROM conversations", "SELECT count(*) FROM outbox",
        "SELECT count(*) FROM schema_migrations", "DELETE FROM inbound_messages WHERE false",
        "SELECT nextval('outbox_id_seq')", "SELECT count(*) FROM account_updates",
        // a transcript's outgoing rows show outbound's status; an agent outside the window is
        // offered the approved templates (0035_transcript_and_owner.sql)
        "SELECT dedupe_key, status, wamid, error_code FROM outbound_messages",
        "SELECT name, language, category FROM templates WHERE status = 'APPROVED'",
        // an agent's photo is one of the conversation's number's files (0039_agent_media.sql)
        "SELECT media_id FROM media_objects WHERE stored_name = 'x' AND phone_number_id = 'y'",
        // the console's health checks, as `convoyctl health` counts them
        // (0041_ops_health_reads.sql)
        "SELECT count(*) FROM outbound_messages WHERE received_at IS NOT NULL AND "
        "attempt_started_at > now()",
        "SELECT count(*) FROM delivery_attempts WHERE outcome = 'retry' AND started_at > now()",
        // what its consumers saw of their queues' waits, and the console reads (0042_queue_waits)
        "DELETE FROM queue_waits WHERE false", "SELECT max(waiting_since) FROM queue_waits"},
       {"SELECT recipient FROM outbound_messages", "UPDATE outbound_messages SET status = 'sent'",
        "SELECT reason FROM templates", "SELECT sha256 FROM media_objects",
        "SELECT * FROM media_objects", "DELETE FROM media_objects WHERE false",
        "DELETE FROM deliveries", "SELECT count(*) FROM thread_controls",
        "CREATE TABLE intruder (x int)", "INSERT INTO schema_migrations VALUES (9999, 'x')"}},
      {"convoy_media",
       {"SELECT count(*) FROM media_objects", "DELETE FROM media_uploads WHERE false",
        "UPDATE outbox SET settled_at = now(), outcome = 'done' WHERE dedupe_key = 'x' AND "
        "settled_at IS NULL",
        // which token and version a number's media is fetched with (0021_number_graph_version.sql)
        "SELECT phone_number_id, graph_token_ref, graph_version FROM numbers",
        // whose a stored file is, for a tenant's token (0034_media_owner.sql)
        "SELECT EXISTS (SELECT 1 FROM media_objects m JOIN numbers n ON n.phone_number_id = "
        "m.phone_number_id "
        "WHERE m.stored_name = 'x' AND n.tenant = 't')",
        // what its consumers saw of their queues' waits (0042_queue_waits.sql); not to delete
        "UPDATE queue_waits SET last_wait_ms = 0 WHERE false"},
       {"SELECT count(*) FROM conversations", "SELECT body FROM outbox", "DELETE FROM queue_waits",
        "SELECT greeting, flows FROM numbers", "UPDATE numbers SET tenant = 'x'",
        "UPDATE outbox SET body = '{}'", "SELECT count(*) FROM templates",
        "INSERT INTO outbox (exchange, routing_key, dedupe_key, body) VALUES ('a', 'b', 'c', '{}')",
        "SELECT count(*) FROM outbound_messages", "CREATE TABLE intruder (x int)"}},
      {"convoy_outbound",
       {"SELECT count(*) FROM outbound_messages", "SELECT count(*) FROM deliveries",
        "DELETE FROM sink_states WHERE false", "SELECT nextval('deliveries_id_seq')",
        // what it reads to send a conversation's replies in order (0016_reply_order.sql)
        "SELECT id, conversation_key, due_at FROM outbox WHERE routing_key = 'outbound.send' AND "
        "settled_at IS NULL",
        // which token and version a number's sends call with (0021_number_graph_version.sql)
        "SELECT graph_token_ref, graph_version FROM numbers WHERE phone_number_id = '1'",
        // a number Meta refused a send for (131031, 133010) pauses, with the reason
        // (0027_number_pause_reason.sql)
        "SELECT throughput, status, coalesce(paused_reason, '') FROM numbers WHERE phone_number_id "
        "= '1'",
        "UPDATE numbers SET status = 'paused', source = 'meta', paused_reason = 'x', paused_at = "
        "now(), updated_at = "
        "now() WHERE phone_number_id = '1' AND status = 'active' RETURNING 1",
        // the template catalog it keeps, and the WABA of a number (0030_templates.sql)
        "DELETE FROM templates WHERE false", "DELETE FROM template_syncs WHERE false",
        "SELECT waba_id FROM numbers WHERE phone_number_id = '1'",
        // whether a bot's reply was taken over after it was written (0035_transcript_and_owner.sql)
        "SELECT c.owner, c.owner_since, o.created_at FROM conversations c, outbox o WHERE "
        "c.conversation_key = 'x' "
        "AND o.dedupe_key = 'x'",
        // Meta's thread_control, called once per command (0037_thread_control.sql)
        "DELETE FROM thread_controls WHERE false",
        // what its consumers saw of their queues' waits (0042_queue_waits.sql); not to delete
        "UPDATE queue_waits SET last_wait_ms = 0 WHERE false"},
       {"SELECT count(*) FROM identities", "SELECT state FROM conversations",
        "DELETE FROM queue_waits", "SELECT wa_id FROM conversations",
        "UPDATE conversations SET owner = 'bot'", "DELETE FROM outbox",
        "UPDATE numbers SET graph_token_ref = 'env:X'", "UPDATE numbers SET tenant = 'x'",
        "SELECT count(*) FROM account_updates", "SELECT body FROM outbox",
        "SELECT count(*) FROM media_objects", "CREATE TABLE intruder (x int)"}},
      {"convoy_readonly",
       {"SELECT count(*) FROM conversations", "SELECT count(*) FROM deliveries",
        "SELECT count(*) FROM templates", "SELECT count(*) FROM template_syncs",
        "SELECT count(*) FROM thread_controls", "SELECT count(*) FROM queue_waits"},
       {"DELETE FROM conversations", "UPDATE deliveries SET status = 'parked'",
        "DELETE FROM queue_waits", "CREATE TABLE intruder (x int)"}},
  };
  int checked = 0;
  for (const auto& c : cases) {
    auto conn = PgConnection::Connect(db_.RoleDsn(c.role));
    ASSERT_TRUE(conn.ok()) << c.role << ": " << conn.status().ToString();
    for (const auto& sql : c.may) {
      auto r = (*conn)->Exec(sql);
      EXPECT_TRUE(r.ok()) << c.role << " must be able to: " << sql << ": " << r.status().ToString();
      ++checked;
    }
    for (const auto& sql : c.may_not) {
      auto r = (*conn)->Exec(sql);
      EXPECT_FALSE(r.ok()) << c.role << " must not be able to: " << sql;
      if (!r.ok()) {
        EXPECT_NE(r.status().message().find("permission denied"), std::string::npos)
            << c.role << ": " << sql << ": " << r.status().ToString();
      }
      ++checked;
    }
  }
  std::cout << "[ database ] " << checked << " statements over " << cases.size() << " roles\n";
}

TEST_F(DatabaseRoles, EveryTableBelongsToAServiceRole) {
  // A migration that adds a table and forgets its grant would fail its service in production
  // only: here first.
  auto owner = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(owner.ok());
  auto orphans = (*owner)->Exec(
      "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND "
      "c.relkind = 'r' "
      "AND c.relname <> 'schema_migrations' AND NOT EXISTS (SELECT 1 FROM "
      "unnest(ARRAY['convoy_conversation', "
      "'convoy_media', 'convoy_outbound']) AS r(role) WHERE has_table_privilege(r.role, c.oid, "
      "'SELECT') "
      "AND has_table_privilege(r.role, c.oid, 'INSERT')) ORDER BY 1");
  ASSERT_TRUE(orphans.ok()) << orphans.status().ToString();
  std::string names;
  for (size_t i = 0; i < orphans->size(); ++i) names += orphans->get(i, 0) + " ";
  EXPECT_EQ(names, "") << "tables no service role may write: grant them in their migration";
}

TEST_F(DatabaseRoles, AServiceRoleCannotMigrateAndSaysWhatWill) {
  auto role = PgConnection::Connect(db_.RoleDsn("convoy_media"));
  ASSERT_TRUE(role.ok());
  EXPECT_TRUE(CheckMigrations(**role, test::SourcePath("deploy/postgres")).ok());
  test::TestDatabase fresh("least_privilege_fresh");
  auto fresh_role = PgConnection::Connect(fresh.RoleDsn("convoy_media"));
  ASSERT_TRUE(fresh_role.ok());
  Status s = CheckMigrations(**fresh_role, test::SourcePath("deploy/postgres"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("convoy-migrate"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("0001_init.sql"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace convoy
