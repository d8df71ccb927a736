#pragma once
// A fake of one Chatwoot account with one API-channel inbox, built from Chatwoot's documentation
// (docs/chatwoot.md lists the facts and their sources), owned by tests:
//   - the Application API calls convoy makes, behind the api_access_token header (401 without it):
//     contacts (search, create with a unique identifier: 422 when taken), a contact's
//     conversations, conversations (create, with a display id), messages (create with
//     message_type/private/source_id, list the newest 20);
//   - the inbox's webhook: every message created (through the API or by an agent) is POSTed to the
//     inbox's webhook URL as message_created, signed as Chatwoot 4.13+ signs it
//     (X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>,
//     X-Chatwoot-Timestamp, X-Chatwoot-Delivery), the API's messages from a thread of its own;
//   - a delayed answer: the next message is made at once and answered late (an attempt whose
//     outcome the caller cannot know).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "convoy/http.h"

namespace convoy::fake {

class FakeChatwoot {
 public:
  struct Contact {
    int64_t id = 0;
    std::string name, identifier, phone_number;
  };
  struct Conversation {
    int64_t id = 0;  // the display id, as every call and webhook names it
    int64_t contact_id = 0, inbox_id = 0;
    std::string source_id, status, convoy_conversation_id;  // the last from additional_attributes
  };
  struct Message {
    int64_t id = 0, conversation_id = 0, created_at = 0;
    std::string content, message_type, source_id;  // message_type: incoming, outgoing
    bool is_private = false;
  };
  struct Webhook {
    int64_t message_id = 0;
    int status = 0;  // the receiver's answer (0: no answer)
  };

  FakeChatwoot(std::string token, int64_t account_id, int64_t inbox_id, std::string webhook_secret);
  ~FakeChatwoot();
  Status Start();
  std::string url() const;                     // http://127.0.0.1:port, the installation's base URL
  void SetWebhookUrl(const std::string& url);  // the inbox's Webhook URL; none: nothing is posted

  std::vector<Contact> Contacts() const;
  std::vector<Conversation> Conversations() const;
  std::vector<Message> Messages() const;              // all, oldest first
  size_t Calls(const std::string& route = "") const;  // e.g. "POST /contacts"; "" all
  bool WaitForMessages(size_t count, std::chrono::milliseconds deadline) const;

  // The next message created through the API is made at once and answered after delay_ms.
  void DelayNextMessage(int delay_ms);
  void ReleaseDelayed();

  // An agent writes in the inbox: an outgoing message (a private note with is_private) in the
  // conversation, its message_created webhook POSTed now; the webhook's HTTP status.
  int AgentReplies(int64_t conversation_id, const std::string& content,
                   int64_t* message_id = nullptr, bool is_private = false);
  // The message's webhook again, as Chatwoot's retry sends it (the same X-Chatwoot-Delivery).
  int Redeliver(int64_t message_id);
  std::vector<Webhook> WebhooksPosted() const;
  bool WaitForWebhooks(size_t count, std::chrono::milliseconds deadline) const;

  // The webhook body Chatwoot sends for a message (message_created), exposed for unit tests.
  std::string WebhookBody(const Message& m) const;

 private:
  HttpResponse Handle(const HttpRequest& r);
  int Post(int64_t message_id);
  void PostLoop();

  const std::string token_, secret_;
  const int64_t account_, inbox_;
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::string webhook_url_;
  std::vector<Contact> contacts_;
  std::vector<Conversation> conversations_;
  std::vector<Message> messages_;
  std::map<std::string, size_t> calls_;
  std::vector<Webhook> posted_;
  std::deque<int64_t> to_post_;
  int64_t next_id_;  // ids like Chatwoot's, unique per start: from a random base
  int delay_next_ms_ = 0;
  bool release_ = false, stop_ = false;
  std::thread poster_;
};

}  // namespace convoy::fake
