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

namespace {
std::string Build() {
  std::random_device rd;
  std::string id = FLAGS_id.empty() ? "wamid.DEMO" + std::to_string(rd()) + std::to_string(rd()) : FLAGS_id;
  std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  std::string message;
  if (!FLAGS_image_id.empty()) {
    message = R"("type":"image","image":{"mime_type":"image/jpeg","id":")" + convoy::JsonEscape(FLAGS_image_id) + "\"" +
              (FLAGS_caption.empty() ? "" : R"(,"caption":")" + convoy::JsonEscape(FLAGS_caption) + "\"") + "}";
  } else {
    message = R"("type":"text","text":{"body":")" + convoy::JsonEscape(FLAGS_text) + R"("})";
  }
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":")" +
         convoy::JsonEscape(FLAGS_phone_number_id) + R"("},"contacts":[{"profile":{"name":")" +
         convoy::JsonEscape(FLAGS_name) + R"("},"wa_id":")" + convoy::JsonEscape(FLAGS_from) +
         R"("}],"messages":[{"from":")" + convoy::JsonEscape(FLAGS_from) + R"(","id":")" + convoy::JsonEscape(id) +
         R"(","timestamp":")" + ts + R"(",)" + message + R"(}]},"field":"messages"}]}]})";
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("convoy-webhook: post a signed WhatsApp webhook (secret from CONVOY_APP_SECRET)");
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
  std::cout << "HTTP " << resp->status << " correlation_id=" << resp->headers["x-correlation-id"] << "\n";
  return resp->status == 200 ? 0 : 1;
}
