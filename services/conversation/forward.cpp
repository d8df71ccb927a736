#include "forward.h"

#include "convoy/url.h"

namespace convoy::conversation {

HttpResponse Forward(const HttpRequest& r, const ForwardTarget& target) {
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
  req.headers["Authorization"] = r.Header("authorization");
  auto answer = HttpFetch(req);
  if (!answer.ok())
    return JsonError(503, "unavailable", target.name + ": " + answer.status().message());
  return JsonResponse(answer->status, answer->body);
}

}  // namespace convoy::conversation
