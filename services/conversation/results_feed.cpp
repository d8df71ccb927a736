#include "results_feed.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"

namespace convoy::conversation {

DeliveryHandler ResultsFeed(const SchemaRegistry& schemas, KnownStep known) {
  return [&schemas, known = std::move(known)](const Delivery& d) {
    LogCtx ctx(d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
               d.Header(headers::kDedupeKey));
    rapidjson::Document doc;
    Status valid = schemas.ValidateAs("flow.completed", 1, d.body, &doc);
    if (!valid.ok()) {
      LOG(WARNING) << ctx << "event=result_invalid error=" << valid.ToString();
      return Disposition::DeadLetter("invalid flow.completed: " + valid.message());
    }
    // Labels only from the deployment's own flows: the flow, and the complete step it ended in.
    std::string flow = JsonStr(doc, "flow"), outcome = JsonStr(doc, "outcome"), tenant = JsonStr(doc, "tenant");
    if (tenant.empty()) tenant = "unknown";  // an event from before the registry named it
    if (!known || !known(flow, "")) flow = "other";
    if (flow == "other" || !known(flow, outcome)) outcome = "other";
    DefaultRegistry()
        .GetCounter("convoy_flow_results_total",
                    "Completed flow runs read from flow.completed, by tenant, flow and outcome (the business's own "
                    "numbers).",
                    "tenant=\"" + tenant + "\",flow=\"" + flow + "\",outcome=\"" + outcome + "\"")
        .Inc();
    VLOG(1) << ctx << "event=result_counted flow=" << flow << " outcome=" << outcome;
    return Disposition::Ack();
  };
}

}  // namespace convoy::conversation
