#pragma once
// The pure parts of talking to Meta's send endpoint: the request body, the response, and the
// classification of Graph errors by error.code (not HTTP status: rate limits come back as 400).
#include <cstdint>
#include <string>

#include "convoy/status.h"

namespace convoy::outbound {

enum class GraphErrorClass {
  kRateLimited,  // 130429 throughput, 131056 pair rate, 80007, 4: retry after backoff
  kTransient,    // 1, 2, 131000, 131016, 131057, 133004, HTTP 5xx, no parseable error: retry
  kPermanent,    // 131047 window closed, 131026 undeliverable, 131051, 131048, 100, auth, ...: no
                 // retry
};
const char* GraphErrorClassName(GraphErrorClass c);

struct GraphError {
  int http_status = 0;
  int code = 0;  // Graph error.code; 0 when the body had none
  std::string message;
  GraphErrorClass klass = GraphErrorClass::kTransient;
};

// A Graph error.code convoy knows: how a send treats it, the least wait before a retry, whether
// it concerns the business account (logged as an error, counted for alerts), and its meaning.
struct GraphErrorInfo {
  int code;
  GraphErrorClass klass;
  int64_t min_retry_ms;
  bool account_problem;
  const char* meaning;
};
const GraphErrorInfo* KnownGraphError(int code);  // nullptr: not one convoy knows
// Whether the error stops the business number itself until a person acts (131031 account locked,
// 133010 not registered): the sender pauses the number in the registry and its sends wait.
bool PausesNumber(int code);
GraphErrorClass ClassifyGraphError(int http_status, int code);
GraphError ParseGraphError(int http_status, const std::string& body);

// Marks the user's message read and shows "typing…" until the reply (or 25 s): not a message, so
// no recipient, no limits and no callback data.
std::string ReadReceiptRequest(const std::string& wamid);

// {"messaging_product":"whatsapp","recipient_type":"individual","to":..., <message fields>,
// "biz_opaque_callback_data": callback} from an outbound.send body (Meta echoes the callback
// data in the message's status webhooks). kInvalidArgument, naming the limit, when the command
// is not sendable: Meta's limits are checked before anything leaves (text ≤ 4096 characters,
// at most 3 reply buttons with titles ≤ 20, list rows ≤ 10, ...).
// An image by a stored file's name (`image.media`, an agent's photo: POST /v1/media) goes to Meta
// as a signed link to convoy-media (convoy/crypto.h MediaLink) that works until `expires`; without
// a base URL and a secret such an image is not sendable.
struct StoredMediaLinks {
  std::string base_url, secret;
  int64_t expires = 0;  // unix seconds
};
Result<std::string> BuildSendRequest(const std::string& command_body,
                                     const std::string& callback = "",
                                     const StoredMediaLinks& links = {});
// Characters (UTF-8 code points), as Meta counts its limits.
size_t Utf8Length(const std::string& s);
// The wamid from a successful send response.
Result<std::string> ParseSendResponse(const std::string& body);

}  // namespace convoy::outbound
