// The login page: remembers which page to return to (the fragment the
// browser was sent to /login from), and accepts a login link
// /login#token=mst_...&next=%23/job/JID (for scripts and headless
// browsers): the token is taken from the fragment, which browsers never
// send to a server, removed from the address bar and history at once, and
// posted as the form would.
"use strict";
(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  const next = params.get("next") || (location.hash.startsWith("#/") ? location.hash : "");
  document.getElementById("next").value = next;
  if (token && !document.getElementById("login-error")) {
    history.replaceState(null, "", "/login");
    document.getElementById("token").value = token;
    document.getElementById("login").submit();
  }
})();
