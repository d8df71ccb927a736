#pragma once
// POST /v1/media?phone_number_id=<id>: a photo a person sends through convoy (an agent's reply,
// issue 29), the request body the file itself with its Content-Type (image/jpeg or image/png, what
// Meta takes in an image message), at most --max_image_bytes. It is kept like a customer's photo:
// its type checked against its first bytes, stored content-addressed in the media folder, and
// recorded in media_objects as having come through that number, so that only that number's
// tenant reads it and only that number's conversations may send it
// (POST /v1/conversations/{id}/messages {"image": {"media": "<stored name>"}}).
// The caller is a named API token (--tokens_file) of an agent or above whose tenant has the number
// (a global token: any number); a number of another tenant is 404, like one that does not exist.
// A person conversation's OIDC proxy signed in comes with conversation's vouch instead of a token
// (convoy/tokens.h Vouch; --forward_secret_file): the same role and tenant checks apply to them.
// 201 {"media": "<stored name>", "mime_type", "size"}; the same file again answers the same name.
#include <functional>
#include <memory>
#include <string>

#include "convoy/http.h"
#include "convoy/status.h"
#include "convoy/tokens.h"
#include "verify.h"

namespace convoy::media {

struct IntakeSettings {
  std::string media_dir;
  std::shared_ptr<TokenStore> tokens;  // null or empty: uploads are closed (403)
  SizeLimits limits;
  // Whether the number is registered and `tenant`'s ("*": any registered number). An error answers
  // 503.
  std::function<Result<bool>(const std::string& phone_number_id, const std::string& tenant)>
      number_is_tenants;
  // Records the stored file as having come through the number (once: the same again changes
  // nothing).
  std::function<Status(const std::string& stored_name, const std::string& sha256_hex, size_t size,
                       const std::string& mime_type, const std::string& phone_number_id)>
      record;
  // Vouches from conversation are taken with it (at least 32 bytes); "": none are.
  std::string forward_secret = "";
};

HttpResponse IntakeMedia(const HttpRequest& request, const IntakeSettings& settings);

}  // namespace convoy::media
