"""Validation aid for against-sockudo only, never for fanout.

sockudo refuses two things the PyPI pusher SDK 3.3 does (and that fanout must
accept): GETs signed with body_md5 of the empty body, and
terminate_user_connections posted to /users/{id}/terminate_connections
without the /apps/{app_id} prefix. To exercise the rest of sdk_python.py's
checks against sockudo anyway, this shim signs GETs without body_md5 and adds
the prefix, then runs the script given as its first argument.
"""
import runpy
import sys
import time

import pusher.http as http
from pusher.signature import sign

_orig = http.Request._generate_auth


def _generate_auth(self):
    if self.method == http.GET:
        self.query_params.update({
            "auth_key": self.client.key,
            "auth_version": "1.0",
            "auth_timestamp": "%.0f" % time.time(),
        })
        to_sign = "\n".join([self.method, self.path, http.make_query_string(self.query_params)])
        self.query_params["auth_signature"] = sign(self.client.secret, to_sign)
    else:
        if self.path.startswith("/users/"):
            self.path = "/apps/%s%s" % (self.client.app_id, self.path)
        _orig(self)


http.Request._generate_auth = _generate_auth
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
