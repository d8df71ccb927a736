#pragma once
// A fake of Meta's Graph API that tests and the local run own: it answers sends like Meta,
// records every request, serves media metadata and bytes, and injects errors and latency.
//   POST /{version}/{phone_number_id}/messages    send (checks the bearer token)
//   POST /{version}/{phone_number_id}/marketing_messages  a marketing template (Marketing Messages
//                                                 API): answered and recorded like a send, its
//                                                 "endpoint" "marketing_messages" (else "messages")
//   GET  /{version}/{waba_id}/message_templates   the WABA's templates (SetTemplates), a page at a
//                                                 time: ?limit=&after=, paging.cursors.after and
//                                                 paging.next while a page follows
//   POST /{version}/{phone_number_id}/thread_control  Conversation Routing's pass, release or take,
//                                                 its body checked (400 code 100 naming what is
//                                                 wrong); recorded, and listed at GET
//                                                 /_fake/thread_controls
//   GET  /{version}/{media_id}                    media metadata (url, mime_type, sha256,
//   file_size) GET  /_download/{media_id}                    media bytes (bearer token) GET
//   /_fake/requests                          recorded sends, as a JSON array POST /_fake/media
//   {"id","path","mime_type"} register a media object POST /_fake/inject
//   {"status","code","count","delay_ms","path"} the next `count` calls fail
//                       (status 200 with a delay: the send is accepted at once, answered late)
// Each business number may have its own token (AcceptToken) and call under its own version: every
// call records the path (the version its first segment) and the bearer token it carried.
// Every accepted send is followed by a "sent" status (echoing biz_opaque_callback_data) handed
// to the status sink, as Meta's status webhooks would carry it.
//   POST /_fake/reset                             forget requests and injections
//   POST /_fake/upload  multipart/form-data "file"  a commerce platform's image upload:
//   {"id","url"};
//                       a repeated Idempotency-Key gets the first answer, nothing uploaded twice
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/http.h"

namespace convoy::fake {

class FakeGraph {
 public:
  FakeGraph(std::string token, std::string host = "127.0.0.1", int port = 0);
  ~FakeGraph();
  Status Start();
  void Stop();
  int port() const;
  std::string base_url() const;  // http://host:port/v24.0
  // Recorded sends as JSON:
  // [{"to":...,"phone_number_id":...,"version":"v24.0","token":...,"body":{...},
  // "endpoint":"messages" or "marketing_messages","correlation_id":...}]
  std::string RequestsJson() const;
  size_t SendCount() const;  // accepted sends
  size_t CallCount() const;  // calls to the send endpoint, errors included
  // Accepted thread_control calls, in order: {"phone_number_id", "correlation_id", "body": {...}}.
  std::vector<std::string> ThreadControls() const;
  size_t ThreadControlCalls() const;  // calls to thread_control, refused and injected ones included
  size_t DownloadCount() const;       // media bytes served
  size_t DownloadRequests() const;    // media downloads asked for (counted on arrival)
  size_t UploadCalls() const;         // calls to the upload endpoint (injected errors not counted)
  std::vector<std::string> Uploaded() const;  // bytes of each distinct upload
  std::string upload_url() const;
  // Blocks until `count` sends were accepted or the deadline passed; whether they were.
  bool WaitForSends(size_t count, std::chrono::milliseconds deadline) const;
  // When each accepted send to `to` (every send when empty) arrived, in ms since the epoch.
  std::vector<int64_t> SendTimesMs(const std::string& to = "") const;
  // Accepted sends per recipient (cheap: for checks over many recipients).
  std::map<std::string, size_t> SendsPerRecipient() const;
  // Receives (phone_number_id, Meta's status object as JSON) for every accepted send.
  using StatusSink =
      std::function<void(const std::string& phone_number_id, const std::string& status)>;
  void SetStatusSink(StatusSink sink);
  // The webhook body Meta posts for one status of a message sent from phone_number_id.
  static std::string StatusWebhook(const std::string& phone_number_id, const std::string& status);
  // What each send to `to` said, in order: a text's body, an interactive message's body
  // followed by " [title|title]" for its buttons, "[template name: param|param]", or
  // "[image <link or id>|<caption>]".
  std::vector<std::string> SentTexts(const std::string& to) const;
  void RegisterMedia(const std::string& id, const std::string& path, const std::string& mime_type);
  void Inject(int http_status, int code, int count, int delay_ms,
              const std::string& path_contains = "");
  // Meta having a bad day: each send fails at random — 503 (code 2) with probability
  // p_unavailable, 400 (130429, throughput) with probability p_throughput — but one message
  // (its callback data, else its recipient) at most max_per_message times. Seeded: repeatable.
  void InjectRandom(double p_unavailable, double p_throughput, int max_per_message, uint32_t seed);
  size_t RandomFailures() const;  // sends failed by InjectRandom so far
  // "Mark as read" calls (status: read), in order: "<wamid>", or "<wamid>:typing" with the typing
  // indicator. Not sends: SendCount() and SentTexts() leave them out.
  std::vector<std::string> ReadReceipts() const;
  // Read receipts, accepted sends and thread controls in the order they arrived: "read:<wamid>",
  // "send:<to>", "thread_control:<action>".
  std::vector<std::string> CallOrder() const;
  // What GET /{version}/{waba_id}/message_templates lists: Graph's template objects (JSON), at most
  // `page_size` a page (less when the caller's limit asks for less).
  void SetTemplates(const std::string& waba_id, std::vector<std::string> templates,
                    size_t page_size);
  size_t TemplatePagesServed() const;  // pages of message_templates answered (errors not counted)
  // Accepts `token` too (another business's), besides the constructor's.
  void AcceptToken(const std::string& token);
  // Every call to a Graph endpoint (sends, read receipts, media metadata and downloads), refused
  // ones included, in order: what it asked for and the bearer token it carried ("" for none).
  struct GraphCall {
    std::string method, path, token;
  };
  std::vector<GraphCall> Calls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convoy::fake
