// convoy-fake-receiver: a business's webhook receiver for the local run. It verifies every POST
// to /hooks with the Standard Webhooks secret in CONVOY_SINK_SECRET (whsec_...), answers 200
// (401 to what it cannot verify) and lists what it received at GET /_fake/requests.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include "convoy/config.h"
#include "convoy/crypto.h"
#include "convoy/flags.h"
#include "fake_sink.h"

int main(int argc, char** argv) {
  convoy::SetFlagDefault("http_port", "8091");
  convoy::InitService(
      "fake-receiver",
      "convoy-fake-receiver: a webhook receiver that verifies Standard Webhooks signatures", &argc,
      &argv);
  auto secret = convoy::LoadSecret("CONVOY_SINK_SECRET", "");
  auto key = secret.ok() ? convoy::WebhookSecretKey(*secret)
                         : convoy::Result<std::string>(secret.status());
  if (!key.ok()) {
    LOG(ERROR) << "service=fake-receiver event=bad_config error=" << key.status().ToString();
    return 2;
  }
  convoy::fake::FakeReceiver receiver({*key}, FLAGS_http_host, FLAGS_http_port);
  convoy::Status s = receiver.Start();
  if (!s.ok()) {
    LOG(ERROR) << "service=fake-receiver event=start_failed error=" << s.ToString();
    return 1;
  }
  LOG(INFO) << "service=fake-receiver event=listening url=" << receiver.url();
  convoy::WaitForShutdownSignal();
  return 0;
}
