// convoy-topology: prints the RabbitMQ definitions for convoy's topology (boot-time import and
// the management UI's "Import definitions"), or with --upgrade brings a running broker declared
// by an older convoy to the current topology without losing a message.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>

#include "convoy/amqp_admin.h"
#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/topology.h"

DEFINE_bool(upgrade, false,
            "Declare convoy's topology on the broker at --amqp_url (env CONVOY_AMQP_URL; the user "
            "convoy-topology), "
            "upgrading one declared by an older convoy and moving what waits in old queues (then "
            "conversation, "
            "media and outbound must be stopped). The services' own users may not declare. Without "
            "it: print "
            "the definitions file");
DEFINE_bool(
    production, false,
    "Print the definitions without users (k8s/overlays/prod: users and permissions come from the "
    "RabbitMQ Messaging Topology Operator with generated secrets)");
DEFINE_int32(
    conversation_partitions, convoy::kConversationInboundPartitions,
    "How many partitions conversation.inbound has (1 to 256): the definitions printed declare that "
    "many, and --upgrade re-partitions a broker that has another number (conversation stopped; "
    "each "
    "conversation's messages keep their order; README). Consumers read what the broker has");
DEFINE_int32(quorum_group_size, 0,
             "How many members (replicas) each quorum queue is created with "
             "(x-quorum-initial-group-size, 0 to 7): the broker's node count in production (3), "
             "0 for the broker's default. Read only when a queue is created: --upgrade keeps an "
             "existing queue with the members it has and says so (`rabbitmq-queues grow` adds "
             "members)");
DEFINE_bool(
    grants, false,
    "Print each part's broker user and permissions, one per line: user, configure, write, read "
    "(tab-separated), for provisioning a broker by hand");

int main(int argc, char** argv) {
  convoy::InitService(
      "topology",
      "convoy-topology: prints convoy's RabbitMQ definitions (deploy/rabbitmq/definitions.json);\n"
      "  convoy-topology --upgrade [--amqp_url=...]: upgrades a running broker in place (README)",
      &argc, &argv);
  convoy::TopologySettings settings;
  settings.conversation_partitions = FLAGS_conversation_partitions;
  settings.quorum_group_size = FLAGS_quorum_group_size;
  if (auto valid = convoy::ValidateTopologySettings(settings); !valid.ok()) {
    std::cerr << "invalid topology settings: " << valid.message() << "\n";
    return 2;
  }
  if (FLAGS_grants) {
    for (const auto& g : convoy::BrokerGrants()) {
      std::cout << convoy::BrokerUserName(g.part) << '\t' << g.configure << '\t' << g.write << '\t'
                << g.read << '\n';
    }
    return 0;
  }
  if (!FLAGS_upgrade) {
    std::cout << convoy::DefinitionsJson(convoy::BuildTopology(settings),
                                         /*local_users=*/!FLAGS_production);
    return 0;
  }
  auto amqp = convoy::AmqpOptionsFromFlags("convoy-topology");
  if (!amqp.ok()) {
    std::cerr << "invalid broker settings: " << amqp.status().ToString() << "\n";
    return 2;
  }
  auto steps = convoy::UpgradeTopology(*amqp, settings);
  if (!steps.ok()) {
    std::cerr << "upgrade failed (nothing was lost; fix the cause and run it again): "
              << steps.status().ToString() << "\n";
    return 1;
  }
  uint64_t moved = 0;
  for (const auto& step : *steps) {
    std::cout << step.queue << ": " << step.action << " (" << step.moved << " messages moved)\n";
    moved += step.moved;
  }
  std::cout << "topology is current: " << steps->size() << " queue(s) upgraded, " << moved
            << " messages moved\n";
  return 0;
}
