// The dashboard's page, stylesheet and script, compiled into the binary
// (generated from index.html, app.css, app.js, login.html and login.js by server/dashboard/BUILD).
#ifndef MUSTER_SERVER_DASHBOARD_ASSETS_H_
#define MUSTER_SERVER_DASHBOARD_ASSETS_H_

namespace muster::dashboard {

extern const char kIndexHtml[];
extern const char kAppCss[];
extern const char kAppJs[];
extern const char kLoginHtml[];
extern const char kLoginJs[];

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_ASSETS_H_
