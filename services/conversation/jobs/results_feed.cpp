#include "jobs/results_feed.h"

#include <glog/logging.h>
#include <rapidjson/document.h>

#include "convoy/log.h"
#include "convoy/metrics.h"
#include "convoy/rapidjson_util.h"
#include "convoy/topology.h"

namespace convoy::conversation {

namespace {

// What the queue carries, one entry apiece: each event counts once by tenant, flow and the step its
// run ended at (a result's `outcome`, the complete step; an expired run's `step`, where the person
// stopped).
struct Feed {
  const char* schema;
  const char* step_member;  // and its label
  const char* metric;
  const char* help;
};
constexpr Feed kFeeds[] = {
    {"flow.completed", "outcome", "convoy_flow_results_total",
     "Completed flow runs read from flow.completed, by tenant, flow and outcome (the business's "
     "own numbers)."},
    {"flow.expired", "step", "convoy_flow_expired_total",
     "Flow runs ended by their inactivity timeout (flow.expired), by tenant, flow and the step the "
     "person stopped "
     "at."},
};

}  // namespace

DeliveryHandler ResultsFeed(const SchemaRegistry& schemas, KnownStep known) {
  return [&schemas, known = std::move(known)](const Delivery& d) {
    LogCtx ctx(d.queue, d.Header(headers::kCorrelationId), d.Header(headers::kConversationKey),
               d.Header(headers::kDedupeKey));
    rapidjson::Document peek;
    peek.Parse(d.body.c_str(), d.body.size());
    const std::string named = peek.HasParseError() ? "" : JsonStr(peek, "schema");
    const Feed* feed = &kFeeds[0];  // anything else is checked as a flow.completed, and parked
    for (const Feed& f : kFeeds) {
      if (named == f.schema) feed = &f;
    }
    rapidjson::Document doc;
    Status valid = schemas.ValidateAs(feed->schema, 1, d.body, &doc);
    if (!valid.ok()) {
      LOG(WARNING) << ctx << "event=result_invalid error=" << valid.ToString();
      return Disposition::DeadLetter(std::string("invalid ") + feed->schema + ": " +
                                     valid.message());
    }
    // Labels only from the deployment's own flows: the flow, and the step the run ended at.
    std::string flow = JsonStr(doc, "flow"), step = JsonStr(doc, feed->step_member),
                tenant = JsonStr(doc, "tenant");
    if (tenant.empty()) tenant = "unknown";  // an event from before the registry named it
    if (!known || !known(flow, "")) flow = "other";
    if (flow == "other" || !known(flow, step)) step = "other";
    DefaultRegistry()
        .GetCounter(feed->metric, feed->help,
                    "tenant=\"" + tenant + "\",flow=\"" + flow + "\"," + feed->step_member + "=\"" +
                        step + "\"")
        .Inc();
    VLOG(1) << ctx << "event=result_counted schema=" << feed->schema << " flow=" << flow
            << " step=" << step;
    return Disposition::Ack();
  };
}

}  // namespace convoy::conversation
