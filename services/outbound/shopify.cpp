#include "shopify.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "convoy/crypto.h"
#include "convoy/rapidjson_util.h"

namespace convoy::outbound::shopify {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string Html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\n':
        out += "<br>";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Clip(const std::string& s, size_t limit) {
  if (s.size() <= limit) return s;
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

std::string Get(const std::map<std::string, std::string>& m, const char* k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

std::string Request(const std::string& query, const std::function<void(Writer&)>& variables) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("query");
  w.String(query);
  w.Key("variables");
  w.StartObject();
  variables(w);
  w.EndObject();
  w.EndObject();
  return b.GetString();
}

const rapidjson::Value& Path(const rapidjson::Value& v, std::initializer_list<const char*> keys) {
  const rapidjson::Value* cur = &v;
  for (const char* k : keys) cur = &JsonMember(*cur, k);
  return *cur;
}

}  // namespace

std::string TagFor(const std::string& result_id) {
  return "convoy-" + Sha256Hex(result_id).substr(0, 40);
}

ProductInput ListingProduct(const std::map<std::string, std::string>& fields,
                            const std::string& fallback_vendor) {
  ProductInput p;
  std::string description = Get(fields, "description");
  size_t end = description.find_first_of(".!?\n");
  std::string title = description.substr(0, end == std::string::npos ? std::string::npos : end);
  if (title.empty()) title = "Listing";
  p.title = Clip(title, 255);
  std::string html = "<p>" + Html(description) + "</p>";
  for (const char* k : {"condition", "size", "notes"}) {
    std::string v = Get(fields, k);
    if (v.empty()) continue;
    std::string label = k;
    label[0] = static_cast<char>(std::toupper(label[0]));
    html += "<p>" + label + ": " + Html(v) + "</p>";
  }
  p.description_html = html;
  p.vendor = Get(fields, "brand");
  if (p.vendor.empty() || p.vendor == "none")
    p.vendor = fallback_vendor.empty() ? "convoy" : fallback_vendor;
  std::string price = Get(fields, "price");
  std::replace(price.begin(), price.end(), ',', '.');
  if (!price.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", std::atof(price.c_str()));
    p.price = buf;
  }
  return p;
}

void AddSeller(ProductInput& product, const std::string& result_id, const std::string& email,
               const std::string& whatsapp) {
  for (const auto& [key, value] :
       {std::make_pair("result_id", result_id), std::make_pair("seller_email", email),
        std::make_pair("seller_whatsapp", whatsapp)}) {
    if (!value.empty()) product.metafields.emplace_back(key, Clip(value, 255));
  }
}

std::string ProductCreateRequest(const ProductInput& p) {
  return Request(
      "mutation convoyCreate($product: ProductCreateInput!, $media: [CreateMediaInput!]) { "
      "productCreate(product: $product, media: $media) { product { id variants(first: 1) { nodes { "
      "id } } } "
      "userErrors { field message } } }",
      [&](Writer& w) {
        w.Key("product");
        w.StartObject();
        w.Key("title");
        w.String(p.title);
        w.Key("descriptionHtml");
        w.String(p.description_html);
        w.Key("vendor");
        w.String(p.vendor);
        w.Key("status");
        w.String("DRAFT");
        w.Key("tags");
        w.StartArray();
        w.String(p.tag);
        w.EndArray();
        if (!p.metafields.empty()) {
          w.Key("metafields");
          w.StartArray();
          for (const auto& [key, value] : p.metafields) {
            w.StartObject();
            w.Key("namespace");
            w.String("convoy");
            w.Key("key");
            w.String(key);
            w.Key("type");
            w.String("single_line_text_field");
            w.Key("value");
            w.String(value);
            w.EndObject();
          }
          w.EndArray();
        }
        w.EndObject();
        w.Key("media");
        w.StartArray();
        for (const auto& [url, alt] : p.media) {
          w.StartObject();
          w.Key("originalSource");
          w.String(url);
          w.Key("mediaContentType");
          w.String("IMAGE");
          w.Key("alt");
          w.String(alt);
          w.EndObject();
        }
        w.EndArray();
      });
}

std::string FindByTagRequest(const std::string& tag) {
  return Request(
      "query convoyFind($q: String!) { products(first: 1, query: $q) { nodes { id variants(first: "
      "1) { nodes { id } } } } }",
      [&](Writer& w) {
        w.Key("q");
        w.String("tag:'" + tag + "'");
      });
}

std::string PriceUpdateRequest(const std::string& product_id, const std::string& variant_id,
                               const std::string& price) {
  return Request(
      "mutation convoyPrice($productId: ID!, $variants: [ProductVariantsBulkInput!]!) { "
      "productVariantsBulkUpdate(productId: $productId, variants: $variants) { userErrors { field "
      "message } } }",
      [&](Writer& w) {
        w.Key("productId");
        w.String(product_id);
        w.Key("variants");
        w.StartArray();
        w.StartObject();
        w.Key("id");
        w.String(variant_id);
        w.Key("price");
        w.String(price);
        w.EndObject();
        w.EndArray();
      });
}

Answer ParseAnswer(const std::string& body, const std::string& kind) {
  Answer a;
  rapidjson::Document d;
  d.Parse(body.c_str(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    a.errors = "not a GraphQL answer";
    return a;
  }
  const auto& errors = JsonMember(d, "errors");
  if (errors.IsArray()) {
    for (const auto& e : errors.GetArray()) {
      if (JsonStr(JsonMember(e, "extensions"), "code") == "THROTTLED") {
        a.throttled = true;
      } else {
        a.errors += (a.errors.empty() ? "" : "; ") + JsonStr(e, "message");
      }
    }
  }
  const auto& cost = Path(d, {"extensions", "cost"});
  const auto& requested = JsonMember(cost, "requestedQueryCost");
  if (requested.IsNumber()) a.requested_cost = requested.GetDouble();
  const auto& ts = JsonMember(cost, "throttleStatus");
  if (ts.IsObject() && JsonMember(ts, "currentlyAvailable").IsNumber()) {
    a.has_throttle_status = true;
    a.maximum =
        JsonMember(ts, "maximumAvailable").IsNumber() ? ts["maximumAvailable"].GetDouble() : 0;
    a.available = ts["currentlyAvailable"].GetDouble();
    a.restore_rate = JsonMember(ts, "restoreRate").IsNumber() ? ts["restoreRate"].GetDouble() : 0;
  }
  const auto& data = JsonMember(d, "data");
  const rapidjson::Value* product = nullptr;
  const rapidjson::Value* user_errors = nullptr;
  if (kind == "create") {
    product = &Path(data, {"productCreate", "product"});
    user_errors = &Path(data, {"productCreate", "userErrors"});
  } else if (kind == "find") {
    const auto& nodes = Path(data, {"products", "nodes"});
    if (nodes.IsArray() && !nodes.Empty()) product = &nodes[0];
  } else {
    user_errors = &Path(data, {"productVariantsBulkUpdate", "userErrors"});
  }
  if (product && product->IsObject()) {
    a.product_id = JsonStr(*product, "id");
    const auto& variants = Path(*product, {"variants", "nodes"});
    if (variants.IsArray() && !variants.Empty()) a.variant_id = JsonStr(variants[0], "id");
  }
  if (user_errors && user_errors->IsArray()) {
    for (const auto& e : user_errors->GetArray()) {
      std::string field;
      const auto& f = JsonMember(e, "field");
      if (f.IsArray()) {
        for (const auto& part : f.GetArray())
          field +=
              (field.empty() ? "" : ".") + std::string(part.IsString() ? part.GetString() : "");
      }
      a.user_errors += (a.user_errors.empty() ? "" : "; ") + field + ": " + JsonStr(e, "message");
    }
  }
  return a;
}

std::chrono::milliseconds Throttle::WaitFor(const std::string& store, double cost) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(store);
  if (it == buckets_.end() || it->second.restore_rate <= 0) return std::chrono::milliseconds(0);
  const Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - b.at).count();
  double now = std::min(b.maximum, b.available + elapsed * b.restore_rate);
  if (now >= cost) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(
      static_cast<int64_t>(std::ceil((cost - now) / b.restore_rate * 1000)));
}

void Throttle::Update(const std::string& store, const Answer& a) {
  if (!a.has_throttle_status) return;
  std::lock_guard<std::mutex> lock(mu_);
  buckets_[store] =
      Bucket{a.maximum, a.available, a.restore_rate, std::chrono::steady_clock::now()};
}

std::chrono::milliseconds Throttle::WaitAfterThrottled(const Answer& a, double cost) {
  double need = std::max(cost, a.requested_cost);
  double rate = a.restore_rate > 0 ? a.restore_rate : 50;  // Shopify's standard restore rate
  double missing = std::max(0.0, need - a.available);
  return std::chrono::milliseconds(
      std::max<int64_t>(1000, static_cast<int64_t>(std::ceil(missing / rate * 1000))));
}

}  // namespace convoy::outbound::shopify
