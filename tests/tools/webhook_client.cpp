// convoy-webhook: posts a webhook body signed exactly as Meta signs it (X-Hub-Signature-256
// over the raw bytes). Either a file as it is, or a text/image message built from flags.
#include <gflags/gflags.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "convoy/config.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "testsupport.h"
#include "webhook.h"

DEFINE_string(url, "http://127.0.0.1:8080/webhook", "Ingress webhook URL");
DEFINE_string(file, "", "Post this file's exact bytes (else build a message from the flags below)");
DEFINE_string(from, "16505551234", "Sender wa_id");
DEFINE_string(name, "Kerry Fisher", "Sender profile name");
DEFINE_string(phone_number_id, "106540352242922", "Business phone number id");
DEFINE_string(text, "", "Text message body");
DEFINE_string(image_id, "", "Image media id (an image message instead of text)");
DEFINE_string(caption, "", "Image caption");
DEFINE_string(id, "", "Message id (wamid); random when empty");
DEFINE_bool(print_only, false, "Print the signed body and header instead of posting");

DEFINE_string(button_id, "",
              "Reply-button id (a tapped button instead of text; --text is its title)");
DEFINE_int64(timestamp, 0, "WhatsApp timestamp, seconds since the epoch (0: now)");

namespace {
std::string Build() {
  std::random_device rd;
  std::string id =
      FLAGS_id.empty() ? "wamid.DEMO" + std::to_string(rd()) + std::to_string(rd()) : FLAGS_id;
  int64_t ts = FLAGS_timestamp > 0 ? FLAGS_timestamp
                                   : std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
  std::string message;
  if (!FLAGS_image_id.empty()) {
    message = convoy::test::ImageMessage(FLAGS_image_id);
    if (!FLAGS_caption.empty()) {
      message.insert(message.size() - 1,
                     R"(,"caption":")" + convoy::JsonEscape(FLAGS_caption) + "\"");
    }
  } else if (!FLAGS_button_id.empty()) {
    message = convoy::test::ButtonReplyMessage(FLAGS_button_id, FLAGS_text);
  } else {
    message = convoy::test::TextMessage(FLAGS_text);
  }
  return convoy::test::MessageWebhook(FLAGS_phone_number_id, FLAGS_from, FLAGS_name, id, ts,
                                      message);
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "convoy-webhook: post a signed WhatsApp webhook (secret from CONVOY_APP_SECRET)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  auto secret = convoy::LoadSecret("CONVOY_APP_SECRET", "");
  if (!secret.ok()) {
    std::cerr << secret.status().ToString() << "\n";
    return 2;
  }
  std::string body;
  if (!FLAGS_file.empty()) {
    std::ifstream in(FLAGS_file, std::ios::binary);
    if (!in) {
      std::cerr << "cannot read --file " << FLAGS_file << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    body = ss.str();
  } else {
    body = Build();
  }
  std::string signature = convoy::ingress::SignBody(body, *secret);
  if (FLAGS_print_only) {
    std::cout << "X-Hub-Signature-256: " << signature << "\n" << body << "\n";
    return 0;
  }
  convoy::HttpClientRequest req;
  req.method = "POST";
  req.url = FLAGS_url;
  req.headers["X-Hub-Signature-256"] = signature;
  req.body = body;
  auto resp = convoy::HttpFetch(req);
  if (!resp.ok()) {
    std::cerr << resp.status().ToString() << "\n";
    return 1;
  }
  std::cout << "HTTP " << resp->status << " correlation_id=" << resp->headers["x-correlation-id"]
            << "\n";
  return resp->status == 200 ? 0 : 1;
}
