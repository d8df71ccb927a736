#pragma once
// The pure parts of a Shopify sink: Admin GraphQL requests for a draft product, their answers,
// and the store's query-cost bucket (extensions.cost.throttleStatus). No I/O.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace convoy::outbound::shopify {

struct ProductInput {
  std::string title, description_html, vendor, tag, price;
  std::vector<std::pair<std::string, std::string>> media;  // (originalSource URL, alt)
  // (key, value) in the namespace "convoy", single-line text: who the draft came from, for the
  // shop's staff. Never in the description, which a published product shows to everyone.
  std::vector<std::pair<std::string, std::string>> metafields;
};

// The tag that names a result on its product: "convoy-" and 40 hex digits of sha256(result id).
std::string TagFor(const std::string& result_id);
// From a listing's fields: title (the description's first sentence, at most 255 characters),
// description (every field, escaped), vendor (brand, else fallback), price ("35.00" form, or "").
ProductInput ListingProduct(const std::map<std::string, std::string>& fields,
                            const std::string& fallback_vendor);
// The seller on the draft: metafields convoy.result_id, convoy.seller_email (the flow's `email`
// field) and convoy.seller_whatsapp (their phone number, else their BSUID), the empty ones left
// out.
void AddSeller(ProductInput& product, const std::string& result_id, const std::string& email,
               const std::string& whatsapp);

std::string ProductCreateRequest(const ProductInput& p);
std::string FindByTagRequest(const std::string& tag);
std::string PriceUpdateRequest(const std::string& product_id, const std::string& variant_id,
                               const std::string& price);

struct Answer {
  std::string product_id, variant_id;  // productCreate, or the product found by tag
  std::string user_errors;             // "field: message; ..." (a product the store refused)
  std::string errors;                  // top-level GraphQL errors other than throttling
  bool throttled = false;              // errors[].extensions.code == THROTTLED
  double requested_cost = 0;           // extensions.cost.requestedQueryCost
  bool has_throttle_status = false;
  double maximum = 0, available = 0, restore_rate = 0;  // throttleStatus
};
// kind: "create", "find" or "price": which member holds the product.
Answer ParseAnswer(const std::string& body, const std::string& kind);

// A store's bucket as the last answer reported it, refilled at its restore rate since. Shared by a
// process's consumer threads; the store is the only one who knows it for sure, so a THROTTLED
// answer still waits.
class Throttle {
 public:
  // How long to wait before a call that costs `cost` points: zero when the bucket has them.
  std::chrono::milliseconds WaitFor(const std::string& store, double cost);
  void Update(const std::string& store, const Answer& a);
  // After a THROTTLED answer: the wait until `cost` points are back.
  static std::chrono::milliseconds WaitAfterThrottled(const Answer& a, double cost);

 private:
  struct Bucket {
    double maximum = 0, available = 0, restore_rate = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace convoy::outbound::shopify
