// convoy-fake-graph: the Graph API fake for tests and the local run.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>
#include <sstream>

#include "convoy/config.h"
#include "convoy/flags.h"
#include "convoy/http.h"
#include "fake_graph.h"
#include "webhook.h"

DEFINE_string(media, "", "Media objects to serve, comma-separated id=path:mime_type");
DEFINE_string(
    status_webhook_url, "",
    "Post a signed 'sent' status webhook here for every accepted send, as Meta does (e.g. "
    "http://127.0.0.1:8080/webhook; the app secret from CONVOY_APP_SECRET); empty: none");
static bool ValidateWebhookUrl(const char* flag, const std::string& v) {
  if (v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0) return true;
  std::fprintf(stderr, "invalid value for --%s: %s (an http:// or https:// URL, or empty)\n", flag,
               v.c_str());
  return false;
}
DEFINE_validator(status_webhook_url, &ValidateWebhookUrl);

int main(int argc, char** argv) {
  convoy::SetFlagDefault("http_port", "8090");
  convoy::InitService("fake-graph",
                      "convoy-fake-graph: a fake of Meta's Graph API for tests and local runs",
                      &argc, &argv);
  auto token = convoy::LoadSecret("CONVOY_GRAPH_TOKEN", "");
  if (!token.ok()) {
    LOG(ERROR) << "service=fake-graph event=bad_config error=" << token.status().ToString();
    return 2;
  }
  convoy::fake::FakeGraph graph(*token, FLAGS_http_host, FLAGS_http_port);
  std::stringstream media(FLAGS_media);
  for (std::string item; std::getline(media, item, ',');) {
    auto eq = item.find('='), colon = item.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq) {
      LOG(ERROR) << "service=fake-graph event=bad_config error=--media item '" << item
                 << "' is not id=path:mime_type";
      return 2;
    }
    graph.RegisterMedia(item.substr(0, eq), item.substr(eq + 1, colon - eq - 1),
                        item.substr(colon + 1));
  }
  if (!FLAGS_status_webhook_url.empty()) {
    auto secret = convoy::LoadSecret("CONVOY_APP_SECRET", "");
    if (!secret.ok()) {
      LOG(ERROR)
          << "service=fake-graph event=bad_config error=--status_webhook_url needs the app secret: "
          << secret.status().ToString();
      return 2;
    }
    graph.SetStatusSink([secret = *secret](const std::string& pnid, const std::string& status) {
      convoy::HttpClientRequest req;
      req.method = "POST";
      req.url = FLAGS_status_webhook_url;
      req.body = convoy::fake::FakeGraph::StatusWebhook(pnid, status);
      req.headers["X-Hub-Signature-256"] = convoy::ingress::SignBody(req.body, secret);
      req.timeout = std::chrono::milliseconds(2000);
      auto r = convoy::HttpFetch(req);
      if (!r.ok() || r->status != 200) {
        LOG(WARNING) << "service=fake-graph event=status_webhook_failed error="
                     << (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().ToString());
      }
    });
  }
  auto s = graph.Start();
  if (!s.ok()) {
    LOG(ERROR) << "service=fake-graph event=listen_failed error=" << s.ToString();
    return 1;
  }
  LOG(INFO) << "service=fake-graph event=started port=" << graph.port();
  convoy::WaitForShutdownSignal();
  graph.Stop();
  return 0;
}
