#include "fake_graph.h"

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "convoy/json.h"
#include "convoy/rapidjson_util.h"
#include "fake_ids.h"

namespace convoy::fake {

namespace {
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string GraphError(int code, const std::string& message) {
  return R"({"error":{"message":")" + JsonEscape(message) + R"(","type":"OAuthException","code":)" +
         std::to_string(code) + R"(,"fbtrace_id":"FAKE"}})";
}

HttpResponse Json(int status, std::string body) {
  return {status, "application/json", std::move(body), {}};
}

std::string Sha256Base64(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}
}  // namespace

struct FakeGraph::Impl {
  HttpServer server;
  mutable std::mutex mu;
  std::set<std::string> tokens;             // every business's token it accepts
  std::vector<GraphCall> graph_calls;       // sends, read receipts, metadata, downloads, in order
  mutable std::condition_variable sent_cv;  // notified on every accepted send
  std::vector<std::string> sends;           // JSON objects
  std::vector<std::pair<std::string, int64_t>> send_times;  // (to, ms since the epoch)
  std::vector<std::string> read_receipts;                   // "<wamid>" or "<wamid>:typing"
  std::vector<std::string> call_order;                      // "read:<wamid>", "send:<to>"
  std::atomic<uint64_t> calls{0}, downloads{0}, download_requests{0}, upload_calls{0};
  std::vector<std::string> uploaded;                  // bytes of each distinct upload
  std::map<std::string, std::string> uploads_by_key;  // Idempotency-Key → answer
  StatusSink sink;
  struct Media {
    std::string path, mime;
  };
  std::map<std::string, Media> media;
  struct Injection {
    int status, code, count, delay_ms;
    std::string path;
  };
  std::deque<Injection> injections;
  std::atomic<uint64_t> next_id{1};
  const std::string start_tag = StartTag();  // wamids and upload ids differ from the last start's
  struct RandomFaults {
    double p_unavailable = 0, p_throughput = 0;
    int max_per_message = 0;
    std::mt19937 rng;
    std::map<std::string, int> failed;  // per message
    size_t total = 0;
  };
  std::optional<RandomFaults> random;  // guarded by mu
  struct Catalog {
    std::vector<std::string> templates;  // JSON objects
    size_t page_size = 25;
  };
  std::map<std::string, Catalog> catalogs;   // by WABA; guarded by mu
  std::vector<std::string> thread_controls;  // accepted thread_control calls (JSON); guarded by mu
  std::atomic<uint64_t> thread_control_calls{0};
  std::atomic<uint64_t> template_pages{0};

  // A random failure for this message, if one is due.
  std::optional<HttpResponse> RandomFailure(const std::string& message_key) {
    std::lock_guard<std::mutex> lock(mu);
    if (!random) return std::nullopt;
    double x = std::uniform_real_distribution<double>(0, 1)(random->rng);
    int& count = random->failed[message_key];
    if (count >= random->max_per_message || x >= random->p_unavailable + random->p_throughput)
      return std::nullopt;
    ++count;
    ++random->total;
    if (x < random->p_unavailable)
      return Json(503, GraphError(2, "Service temporarily unavailable"));
    return Json(400, GraphError(130429, "Rate limit hit"));
  }

  Impl(std::string t, std::string host, int port)
      : server(HttpServerOptions{host, port, 8 << 20}), tokens{std::move(t)} {}

  static std::string Bearer(const HttpRequest& r) {
    const std::string h = r.Header("authorization");
    return h.rfind("Bearer ", 0) == 0 ? h.substr(7) : "";
  }
  // Records the call (with the token it carried) and says whether the token is one it accepts.
  bool Authorized(const HttpRequest& r) {
    const std::string token = Bearer(r);
    std::lock_guard<std::mutex> lock(mu);
    graph_calls.push_back({r.method, r.path, token});
    return !token.empty() && tokens.count(token) > 0;
  }

  // Takes the first matching injection, if any.
  std::optional<Injection> Take(const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = injections.begin();
    for (; it != injections.end(); ++it) {
      if (it->path.empty() || r.path.find(it->path) != std::string::npos) break;
    }
    if (it == injections.end()) return std::nullopt;
    Injection inj = *it;
    if (--it->count <= 0) injections.erase(it);
    return inj;
  }

  // Applies the first matching injection, if any: sleeps, then returns the error to answer.
  std::optional<HttpResponse> Injected(const HttpRequest& r) {
    auto inj = Take(r);
    if (!inj) return std::nullopt;
    if (inj->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(inj->delay_ms));
    if (inj->status == 200) return std::nullopt;  // latency only
    return Json(inj->status, GraphError(inj->code, "injected error " + std::to_string(inj->code)));
  }

  HttpResponse Send(const HttpRequest& r) {
    // /{version}/{phone_number_id}/messages
    if (!Authorized(r)) return Json(401, GraphError(190, "Invalid OAuth access token"));
    rapidjson::Document body;
    body.Parse(r.body.c_str(), r.body.size());
    if (body.HasParseError() || !body.IsObject() || !body.HasMember("messaging_product")) {
      calls.fetch_add(1);
      return Json(400, GraphError(100, "Invalid parameter"));
    }
    if (JsonStr(body, "status") == "read") {
      // Mark as read, with the typing indicator: not a message, not counted as a send.
      std::string wamid = JsonStr(body, "message_id");
      if (wamid.empty()) return Json(400, GraphError(100, "Invalid parameter: message_id"));
      bool typing = body.HasMember("typing_indicator") && body["typing_indicator"].IsObject();
      std::lock_guard<std::mutex> lock(mu);
      read_receipts.push_back(wamid + (typing ? ":typing" : ""));
      call_order.push_back("read:" + wamid);
      return Json(200, R"({"success":true})");
    }
    // Sends (read receipts above are neither counted as calls nor given injected errors).
    calls.fetch_add(1);
    auto inj = Take(r);
    if (inj && inj->status != 200) {
      if (inj->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(inj->delay_ms));
      return Json(inj->status,
                  GraphError(inj->code, "injected error " + std::to_string(inj->code)));
    }
    // A phone number in `to`, or a business-scoped user ID in `recipient` (`to` wins).
    std::string to = JsonStr(body, "to");
    const bool bsuid = to.empty();
    if (bsuid) to = JsonStr(body, "recipient");
    if (to.empty()) return Json(400, GraphError(100, "Invalid parameter: no to or recipient"));
    std::string callback_data = JsonStr(body, "biz_opaque_callback_data");
    if (auto failure = RandomFailure(callback_data.empty() ? to : callback_data)) return *failure;
    auto first = r.path.find('/', 1), second = r.path.find('/', first + 1);
    std::string pnid = r.path.substr(first + 1, second - first - 1);
    const std::string endpoint = r.path.substr(second + 1);
    std::string wamid = "wamid.FAKE" + start_tag + "." + std::to_string(next_id++);
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    StatusSink to_sink;
    {
      std::lock_guard<std::mutex> lock(mu);
      sends.push_back(R"({"phone_number_id":")" + JsonEscape(pnid) + R"(","version":")" +
                      JsonEscape(r.path.substr(1, first - 1)) + R"(","endpoint":")" +
                      JsonEscape(endpoint) + R"(","token":")" + JsonEscape(Bearer(r)) +
                      R"(","to":")" + JsonEscape(to) + R"(","wamid":")" + wamid +
                      R"(","correlation_id":")" + JsonEscape(r.Header("x-correlation-id")) +
                      R"(","at_ms":)" + std::to_string(now_ms) + R"(,"body":)" + r.body + "}");
      send_times.emplace_back(to, now_ms);
      call_order.push_back("send:" + to);
      to_sink = sink;
    }
    sent_cv.notify_all();
    if (to_sink) {
      std::string callback = JsonStr(body, "biz_opaque_callback_data");
      to_sink(pnid, R"({"id":")" + wamid + R"(","status":"sent","timestamp":")" +
                        std::to_string(now_ms / 1000) +
                        (bsuid ? R"(","recipient_user_id":")" : R"(","recipient_id":")") +
                        JsonEscape(to) + "\"" +
                        (callback.empty()
                             ? ""
                             : R"(,"biz_opaque_callback_data":")" + JsonEscape(callback) + "\"") +
                        "}");
    }
    // Accepted, answered late: the caller may give up before it learns the wamid.
    if (inj && inj->delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(inj->delay_ms));
    return Json(200, R"({"messaging_product":"whatsapp","contacts":[{"input":")" + JsonEscape(to) +
                         (bsuid ? R"(","user_id":")" : R"(","wa_id":")") + JsonEscape(to) +
                         R"("}],"messages":[{"id":")" + wamid + R"("}]})");
  }

  // POST /{version}/{phone_number_id}/thread_control (Conversation Routing), checked as Meta's
  // reference and its partners describe it: messaging_product whatsapp, `to` or `recipient`, an
  // action of pass, release or take, metadata of at most 2,000 characters, control_pass only with
  // pass and only {"target_role": "ai_agent"}. Answered {"messaging_product": "whatsapp"}.
  HttpResponse ThreadControl(const HttpRequest& r) {
    if (!Authorized(r)) return Json(401, GraphError(190, "Invalid OAuth access token"));
    thread_control_calls.fetch_add(1);
    if (auto injected = Injected(r)) return *injected;
    rapidjson::Document body;
    body.Parse(r.body.c_str(), r.body.size());
    auto bad = [](const std::string& why) { return Json(400, GraphError(100, "(#100) " + why)); };
    if (body.HasParseError() || !body.IsObject() ||
        JsonStr(body, "messaging_product") != "whatsapp") {
      return bad("messaging_product must be whatsapp");
    }
    const std::string action = JsonStr(body, "action");
    if (action != "pass" && action != "release" && action != "take")
      return bad("action must be pass, release or take");
    if (JsonStr(body, "to").empty() && JsonStr(body, "recipient").empty())
      return bad("to or recipient is required");
    if (body.HasMember("metadata")) {
      if (!body["metadata"].IsString()) return bad("metadata must be a string");
      size_t chars = 0;
      for (unsigned char c : JsonStr(body, "metadata")) chars += (c & 0xC0) != 0x80;
      if (chars > 2000) return bad("metadata is at most 2000 characters");
    }
    if (body.HasMember("control_pass")) {
      const auto& cp = body["control_pass"];
      if (action != "pass") return bad("control_pass is only valid with action pass");
      if (!cp.IsObject() || JsonStr(cp, "target_role") != "ai_agent")
        return bad("control_pass.target_role must be ai_agent");
    }
    auto first = r.path.find('/', 1), second = r.path.find('/', first + 1);
    const std::string pnid = r.path.substr(first + 1, second - first - 1);
    std::lock_guard<std::mutex> lock(mu);
    thread_controls.push_back(R"({"phone_number_id":")" + JsonEscape(pnid) +
                              R"(","correlation_id":")" + JsonEscape(r.Header("x-correlation-id")) +
                              R"(","body":)" + r.body + "}");
    call_order.push_back("thread_control:" + action);
    return Json(200, R"({"messaging_product":"whatsapp"})");
  }

  // GET /{version}/{waba_id}/message_templates: one page; the cursor is where the next page starts.
  HttpResponse Templates(const HttpRequest& r) {
    if (!Authorized(r)) return Json(401, GraphError(190, "Invalid OAuth access token"));
    if (auto injected = Injected(r)) return *injected;
    auto first = r.path.find('/', 1), second = r.path.find('/', first + 1);
    const std::string waba = r.path.substr(first + 1, second - first - 1);
    auto q = [&](const char* k) {
      auto it = r.query.find(k);
      return it == r.query.end() ? std::string() : it->second;
    };
    std::lock_guard<std::mutex> lock(mu);
    auto c = catalogs.find(waba);
    if (c == catalogs.end())
      return Json(400, GraphError(100, "Unsupported get request: unknown WABA " + waba));
    size_t start = 0;
    const std::string after = q("after");
    if (!after.empty()) {
      // Cursors as Graph's look: base64-ish, with characters a query must encode.
      if (after.rfind("cur+", 0) != 0 || after.size() < 7 ||
          after.substr(after.size() - 2) != "==") {
        return Json(400, GraphError(100, "Invalid cursor " + after));
      }
      start = std::stoul(after.substr(4, after.size() - 6));
    }
    size_t page = c->second.page_size;
    if (const std::string limit = q("limit"); !limit.empty())
      page = std::min<size_t>(page, std::stoul(limit));
    const size_t end = std::min(c->second.templates.size(), start + page);
    std::string data;
    for (size_t i = start; i < end; ++i) data += (i > start ? "," : "") + c->second.templates[i];
    const std::string cursor = "cur+" + std::to_string(end) + "==";
    std::string paging = R"({"cursors":{"before":"cur+)" + std::to_string(start) +
                         R"(==","after":")" + cursor + "\"}";
    if (end < c->second.templates.size()) {
      paging += R"(,"next":"https://graph.facebook.com)" + r.path + "?after=" + cursor + "\"";
    }
    template_pages.fetch_add(1);
    return Json(200, R"({"data":[)" + data + R"(],"paging":)" + paging + "}}");
  }

  HttpResponse Metadata(const HttpRequest& r) {
    if (!Authorized(r)) return Json(401, GraphError(190, "Invalid OAuth access token"));
    if (auto injected = Injected(r)) return *injected;
    std::string id = r.path.substr(r.path.rfind('/') + 1);
    Media m;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = media.find(id);
      if (it == media.end())
        return Json(404, GraphError(100, "Unsupported get request: unknown media " + id));
      m = it->second;
    }
    std::string bytes = ReadFile(m.path);
    std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/_download/" + id;
    return Json(200, R"({"messaging_product":"whatsapp","url":")" + url + R"(","mime_type":")" +
                         m.mime + R"(","sha256":")" + Sha256Base64(bytes) + R"(","file_size":")" +
                         std::to_string(bytes.size()) + R"(","id":")" + JsonEscape(id) + R"("})");
  }

  HttpResponse Download(const HttpRequest& r) {
    if (!Authorized(r)) return Json(401, GraphError(190, "Invalid OAuth access token"));
    download_requests.fetch_add(1);
    if (auto injected = Injected(r)) return *injected;
    std::string id = r.path.substr(r.path.rfind('/') + 1);
    std::lock_guard<std::mutex> lock(mu);
    auto it = media.find(id);
    if (it == media.end()) return Json(404, GraphError(100, "unknown media"));
    downloads.fetch_add(1);
    return HttpResponse{200, it->second.mime, ReadFile(it->second.path), {}};
  }

  // A commerce platform's image upload: multipart/form-data with a "file" part; an
  // Idempotency-Key seen before gets the first answer again without a second upload.
  HttpResponse Upload(const HttpRequest& r) {
    if (auto injected = Injected(r)) return *injected;
    upload_calls.fetch_add(1);
    std::string type = r.Header("content-type");
    auto b = type.find("boundary=");
    if (type.rfind("multipart/form-data", 0) != 0 || b == std::string::npos) {
      return Json(415, R"({"error":"multipart/form-data expected"})");
    }
    std::string boundary = "--" + type.substr(b + 9);
    auto part = r.body.find(boundary);
    auto header_end = part == std::string::npos ? part : r.body.find("\r\n\r\n", part);
    auto next =
        header_end == std::string::npos ? header_end : r.body.find("\r\n" + boundary, header_end);
    if (next == std::string::npos) return Json(400, R"({"error":"no file part"})");
    std::string headers = r.body.substr(part, header_end - part);
    if (headers.find("name=\"file\"") == std::string::npos)
      return Json(400, R"({"error":"no field named file"})");
    std::string bytes = r.body.substr(header_end + 4, next - header_end - 4);
    std::string key = r.Header("idempotency-key");
    std::lock_guard<std::mutex> lock(mu);
    if (!key.empty()) {
      auto seen = uploads_by_key.find(key);
      if (seen != uploads_by_key.end()) return Json(200, seen->second);
    }
    std::string sha = Sha256Base64(bytes);
    for (auto& c : sha) {
      if (c == '/') c = '_';
      if (c == '+') c = '-';
    }
    uploaded.push_back(bytes);
    std::string answer = R"({"id":"img_)" + start_tag + "_" + std::to_string(uploaded.size()) +
                         R"(","url":"https://cdn.fake.example/)" + sha.substr(0, 43) + R"("})";
    if (!key.empty()) uploads_by_key[key] = answer;
    return Json(200, answer);
  }
};

FakeGraph::FakeGraph(std::string token, std::string host, int port)
    : impl_(new Impl(std::move(token), std::move(host), port)) {
  Impl* impl = impl_.get();
  impl->server.Route("GET", "/_fake/requests",
                     [this](const HttpRequest&) { return Json(200, RequestsJson()); });
  impl->server.Route("GET", "/_fake/thread_controls", [this](const HttpRequest&) {
    std::string out = "[";
    for (const auto& c : ThreadControls()) out += (out.size() > 1 ? "," : "") + c;
    return Json(200, out + "]");
  });
  // Counts only, for a poller that waits for a number without pulling every request each time.
  impl->server.Route("GET", "/_fake/count", [impl](const HttpRequest&) {
    std::lock_guard<std::mutex> lock(impl->mu);
    return Json(200, R"({"sends":)" + std::to_string(impl->sends.size()) + R"(,"read_receipts":)" +
                         std::to_string(impl->read_receipts.size()) + "}");
  });
  impl->server.Route("POST", "/_fake/reset", [impl](const HttpRequest&) {
    std::lock_guard<std::mutex> lock(impl->mu);
    impl->sends.clear();
    impl->send_times.clear();
    impl->injections.clear();
    impl->random.reset();
    impl->read_receipts.clear();
    impl->call_order.clear();
    impl->graph_calls.clear();
    impl->thread_controls.clear();
    return Json(200, "{}");
  });
  impl->server.Route("POST", "/_fake/media", [this](const HttpRequest& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("id") || !d.HasMember("path") ||
        !d.HasMember("mime_type")) {
      return Json(400, R"({"error":"need id, path, mime_type"})");
    }
    RegisterMedia(d["id"].GetString(), d["path"].GetString(), d["mime_type"].GetString());
    return Json(200, "{}");
  });
  impl->server.Route("POST", "/_fake/inject", [this](const HttpRequest& r) {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("status") || !d["status"].IsInt()) {
      return Json(400, R"({"error":"need status"})");
    }
    auto get = [&](const char* k, int def) {
      return d.HasMember(k) && d[k].IsInt() ? d[k].GetInt() : def;
    };
    Inject(d["status"].GetInt(), get("code", 0), get("count", 1), get("delay_ms", 0),
           d.HasMember("path") && d["path"].IsString() ? d["path"].GetString() : "");
    return Json(200, "{}");
  });
  impl->server.Route("GET", "/_download/",
                     [impl](const HttpRequest& r) { return impl->Download(r); });
  impl->server.Route("POST", "/_fake/upload",
                     [impl](const HttpRequest& r) { return impl->Upload(r); });
  impl->server.Route("POST", "/", [impl](const HttpRequest& r) {
    auto ends = [&](const std::string& tail) {
      return r.path.size() > tail.size() &&
             r.path.compare(r.path.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends("/messages") || ends("/marketing_messages")) return impl->Send(r);
    if (ends("/thread_control")) return impl->ThreadControl(r);
    return Json(404, GraphError(100, "Unknown path " + r.path));
  });
  impl->server.Route("GET", "/v", [impl](const HttpRequest& r) {
    const std::string tail = "/message_templates";
    if (r.path.size() > tail.size() &&
        r.path.compare(r.path.size() - tail.size(), tail.size(), tail) == 0) {
      return impl->Templates(r);
    }
    return impl->Metadata(r);
  });
}

FakeGraph::~FakeGraph() { Stop(); }
Status FakeGraph::Start() { return impl_->server.Start(); }
void FakeGraph::Stop() { impl_->server.Stop(); }
int FakeGraph::port() const { return impl_->server.port(); }
std::string FakeGraph::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/v24.0";
}

std::string FakeGraph::RequestsJson() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string out = "[";
  for (size_t i = 0; i < impl_->sends.size(); ++i) out += (i ? "," : "") + impl_->sends[i];
  return out + "]";
}

std::map<std::string, size_t> FakeGraph::SendsPerRecipient() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::map<std::string, size_t> out;
  for (const auto& [to, at] : impl_->send_times) ++out[to];
  return out;
}

std::vector<std::string> FakeGraph::SentTexts(const std::string& to) const {
  rapidjson::Document d;
  std::string all = RequestsJson();
  d.Parse(all.c_str(), all.size());
  std::vector<std::string> out;
  for (const auto& send : d.GetArray()) {
    if (JsonStr(send, "to") != to) continue;
    const auto& body = JsonMember(send, "body");
    if (JsonStr(body, "type") == "interactive") {
      const auto& in = JsonMember(body, "interactive");
      std::string text = JsonStr(JsonMember(in, "body"), "text") + " [";
      const auto& buttons = JsonMember(JsonMember(in, "action"), "buttons");
      for (rapidjson::SizeType i = 0; buttons.IsArray() && i < buttons.Size(); ++i) {
        text += (i ? "|" : "") + JsonStr(JsonMember(buttons[i], "reply"), "title");
      }
      out.push_back(text + "]");
    } else if (JsonStr(body, "type") == "template") {
      // "[template name: param|param]"
      const auto& t = JsonMember(body, "template");
      std::string text = "[template " + JsonStr(t, "name") + ":";
      const auto& components = JsonMember(t, "components");
      for (rapidjson::SizeType c = 0; components.IsArray() && c < components.Size(); ++c) {
        const auto& params = JsonMember(components[c], "parameters");
        for (rapidjson::SizeType i = 0; params.IsArray() && i < params.Size(); ++i) {
          text += (i ? "|" : " ") + JsonStr(params[i], "text");
        }
      }
      out.push_back(text + "]");
    } else if (JsonStr(body, "type") == "image") {
      // "[image <link or id>|<caption>]"
      const auto& image = JsonMember(body, "image");
      const std::string where =
          JsonStr(image, "link").empty() ? JsonStr(image, "id") : JsonStr(image, "link");
      out.push_back("[image " + where + "|" + JsonStr(image, "caption") + "]");
    } else {
      out.push_back(JsonStr(JsonMember(body, "text"), "body"));
    }
  }
  return out;
}

size_t FakeGraph::SendCount() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sends.size();
}

size_t FakeGraph::CallCount() const { return impl_->calls.load(); }

std::vector<std::string> FakeGraph::ThreadControls() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->thread_controls;
}

size_t FakeGraph::ThreadControlCalls() const { return impl_->thread_control_calls.load(); }
size_t FakeGraph::DownloadCount() const { return impl_->downloads.load(); }
size_t FakeGraph::DownloadRequests() const { return impl_->download_requests.load(); }
size_t FakeGraph::UploadCalls() const { return impl_->upload_calls.load(); }

std::vector<std::string> FakeGraph::Uploaded() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->uploaded;
}

std::string FakeGraph::upload_url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/_fake/upload";
}

bool FakeGraph::WaitForSends(size_t count, std::chrono::milliseconds deadline) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->sent_cv.wait_for(lock, deadline, [&] { return impl_->sends.size() >= count; });
}

std::vector<int64_t> FakeGraph::SendTimesMs(const std::string& to) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<int64_t> out;
  for (const auto& [t, at] : impl_->send_times) {
    if (to.empty() || t == to) out.push_back(at);
  }
  return out;
}

void FakeGraph::SetStatusSink(StatusSink sink) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->sink = std::move(sink);
}

std::string FakeGraph::StatusWebhook(const std::string& pnid, const std::string& status) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":)"
         R"({"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",)"
         R"("phone_number_id":")" +
         JsonEscape(pnid) + R"("},"statuses":[)" + status + R"(]},"field":"messages"}]}]})";
}

void FakeGraph::RegisterMedia(const std::string& id, const std::string& path,
                              const std::string& mime_type) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->media[id] = {path, mime_type};
}

void FakeGraph::InjectRandom(double p_unavailable, double p_throughput, int max_per_message,
                             uint32_t seed) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl::RandomFaults r;
  r.p_unavailable = p_unavailable;
  r.p_throughput = p_throughput;
  r.max_per_message = max_per_message;
  r.rng.seed(seed);
  impl_->random = std::move(r);
}

std::vector<std::string> FakeGraph::ReadReceipts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->read_receipts;
}

std::vector<std::string> FakeGraph::CallOrder() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->call_order;
}

void FakeGraph::AcceptToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->tokens.insert(token);
}

std::vector<FakeGraph::GraphCall> FakeGraph::Calls() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->graph_calls;
}

size_t FakeGraph::RandomFailures() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->random ? impl_->random->total : 0;
}

void FakeGraph::Inject(int http_status, int code, int count, int delay_ms,
                       const std::string& path_contains) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->injections.push_back({http_status, code, count, delay_ms, path_contains});
}

void FakeGraph::SetTemplates(const std::string& waba_id, std::vector<std::string> templates,
                             size_t page_size) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->catalogs[waba_id] = {std::move(templates), page_size};
}

size_t FakeGraph::TemplatePagesServed() const { return impl_->template_pages.load(); }

}  // namespace convoy::fake
