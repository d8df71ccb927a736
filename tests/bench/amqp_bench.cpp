// convoy-amqp-bench: the confirmed-publish rate of the common Publisher (pipelined confirms)
// beside publishing with a wait for each confirm, in one run on one broker. Prints a table.
#include <gflags/gflags.h>

#include <chrono>
#include <cstdio>

#include "convoy/amqp.h"
#include "convoy/config.h"
#include "convoy/topology.h"

DEFINE_string(amqp_url, "amqp://guest:guest@127.0.0.1:21672/%2f",
              "Broker (use a throw-away vhost)");
DEFINE_validator(amqp_url, &convoy::ValidateAmqpUrl);
DEFINE_int32(messages, 20000, "Messages for the pipelined run");
DEFINE_validator(messages, &convoy::ValidatePositive);
DEFINE_int32(serial_messages, 2000, "Messages for the wait-for-each-confirm run");
DEFINE_validator(serial_messages, &convoy::ValidatePositive);
DEFINE_int32(body_bytes, 1024, "Body size");
DEFINE_validator(body_bytes, &convoy::ValidatePositive);
DEFINE_string(count_queue, "",
              "Only print the exact number of ready messages in this queue, then exit");

namespace {
convoy::AmqpMessage Message(int i) {
  convoy::AmqpMessage m;
  m.exchange = convoy::exchanges::kCommands;
  m.routing_key = convoy::queues::kMediaUpload;  // a queue nobody consumes in the bench vhost
  m.message_id = "bench-" + std::to_string(i);
  m.body.assign(static_cast<size_t>(FLAGS_body_bytes), 'x');
  m.headers[convoy::headers::kDedupeKey] = m.message_id;
  return m;
}
double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}
}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (!FLAGS_count_queue.empty()) {
    auto n = convoy::QueueMessageCount(convoy::AmqpOptions{FLAGS_amqp_url, "convoy-bench"},
                                       FLAGS_count_queue);
    if (!n.ok()) {
      std::fprintf(stderr, "%s\n", n.status().ToString().c_str());
      return 1;
    }
    std::printf("%u\n", *n);
    return 0;
  }
  convoy::Publisher pub(convoy::AmqpOptions{FLAGS_amqp_url, "convoy-bench"});
  pub.Start();
  if (!pub.WaitConnected(std::chrono::seconds(30))) {
    std::fprintf(stderr, "cannot connect to %s\n", convoy::RedactAmqpUrl(FLAGS_amqp_url).c_str());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < FLAGS_serial_messages; ++i) {
    auto s = pub.PublishAndWait(Message(i), std::chrono::seconds(10));
    if (!s.ok()) {
      std::fprintf(stderr, "serial publish failed: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  double serial = FLAGS_serial_messages / Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  convoy::PublishBatch batch;
  for (int i = 0; i < FLAGS_messages; ++i) pub.Publish(Message(i), batch.Add());
  auto s = batch.Wait(std::chrono::steady_clock::now() + std::chrono::seconds(120));
  if (!s.ok()) {
    std::fprintf(stderr, "pipelined publish failed: %s\n", s.ToString().c_str());
    return 1;
  }
  double pipelined = FLAGS_messages / Seconds(t0);
  auto stats = pub.stats();
  std::printf("| mode | messages | confirmed msg/s | max in flight |\n|---|---:|---:|---:|\n");
  std::printf("| wait for each confirm | %d | %.0f | 1 |\n", FLAGS_serial_messages, serial);
  std::printf("| pipelined confirms (convoy Publisher) | %d | %.0f | %llu |\n", FLAGS_messages,
              pipelined, static_cast<unsigned long long>(stats.max_in_flight));
  std::printf("ratio pipelined/serial: %.1fx  (body %d bytes, persistent, mandatory)\n",
              pipelined / serial, FLAGS_body_bytes);
  return 0;
}
