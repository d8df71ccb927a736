#include "api/forward.h"

#include <ctime>

#include "convoy/url.h"

namespace convoy::conversation {

HttpResponse Forward(const HttpRequest& r, const ForwardTarget& target, const Caller& caller) {
  if (target.base_url.empty()) {
    return JsonError(503, "unavailable",
                     target.name + " is not reachable from here: set " + target.flag);
  }
  HttpClientRequest req;
  req.method = r.method;
  std::string query;
  for (const auto& [k, v] : r.query)
    query += (query.empty() ? "?" : "&") + UrlEncode(k) + "=" + UrlEncode(v);
  req.url = target.base_url + r.path + query;
  req.body = r.body;
  if (!r.Header("content-type").empty()) req.content_type = r.Header("content-type");
  const std::string authorization = r.Header("authorization");
  if (!authorization.empty()) {
    req.headers["Authorization"] = authorization;
  } else if (target.forward_secret.size() >= kMinForwardSecretBytes) {
    req.headers["X-Convoy-Vouch"] =
        Vouch(target.forward_secret, caller, r, static_cast<int64_t>(std::time(nullptr)));
  } else {
    return JsonError(503, "unavailable",
                     "a person signed in by the proxy reaches " + target.name +
                         " only with a vouch: set CONVOY_FORWARD_SECRET (or "
                         "--forward_secret_file) on conversation and " +
                         target.name);
  }
  auto answer = HttpFetch(req);
  if (!answer.ok())
    return JsonError(503, "unavailable", target.name + ": " + answer.status().message());
  return JsonResponse(answer->status, answer->body);
}

}  // namespace convoy::conversation
