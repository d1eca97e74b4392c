// The API messages JobService answers with, filled from jobd's domain types
// (job_types.h, inventory.h, minion_keys.h, auth/audit_log.h). Protobuf
// types start here and go no further in: the service and the dashboard
// fill responses with these, nothing behind them sees a message.
#ifndef MUSTER_SERVER_JOB_SERVICE_MESSAGES_H_
#define MUSTER_SERVER_JOB_SERVICE_MESSAGES_H_

#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/job_service.pb.h"
#include "server/auth/audit_log.h"
#include "server/inventory.h"
#include "server/job_lifecycle.h"
#include "server/job_registry.h"
#include "server/job_types.h"
#include "server/minion_keys.h"
#include "server/redis_topology.h"

namespace muster::server {

// A job with its completeness, datacenters and attempts.
void FillJob(const JobSnapshot& job, muster::v1::Job* out);
void FillReturn(const ReturnRow& row, muster::v1::Return* out);
void FillRelay(const RelayView& relay, muster::v1::Relay* out);
void FillRedisTopology(const RedisTopologySnapshot& topology, muster::v1::RedisTopology* out);
// One DatacenterCount per entry, in order.
void FillCounts(const std::vector<DatacenterCount>& counts,
                google::protobuf::RepeatedPtrField<muster::v1::DatacenterCount>* out);
void FillMinionKey(const MinionKeyEntry& key, muster::v1::MinionKey* out);
void FillAuditEntry(const auth::AuditRecord& row, muster::v1::AuditEntry* out);

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_SERVICE_MESSAGES_H_
