"""Fault injection for the gateway's end-to-end tests (not part of the reusable app).

With WIREGATE_FAULTS set to a JSON file holding {"plan": [...], "reject_seq": N}, each request
to the events endpoint takes the next step of the plan: a status such as "500" or "503", "429:<seconds>" (with
Retry-After), "hang:<seconds>" (answers late, after storing: the gateway has given up and
sends it again), "login" (a captive portal's 200 with a login page, nothing stored), "302" (a
redirect to it), "ok". A batch holding the id "<gateway>:<reject_seq>" is answered 400.
Requests (and those with a gzip body) are counted in the file under a lock: the workers share it.
"""
import fcntl
import gzip
import json
import os
import time

from django.http import HttpResponse, JsonResponse


class FaultInjection:
    def __init__(self, get_response):
        self.get_response = get_response
        self.path = os.environ.get("WIREGATE_FAULTS")

    def next_step(self, request):
        with open(self.path, "r+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            state = json.load(file)
            step = state["plan"].pop(0) if state.get("plan") else "ok"
            state["requests"] = state.get("requests", 0) + 1
            if request.META.get("HTTP_CONTENT_ENCODING") == "gzip":
                state["gzip"] = state.get("gzip", 0) + 1
            file.seek(0)
            file.truncate()
            json.dump(state, file)
            return step, state.get("reject_seq")

    def __call__(self, request):
        # The event uploads only: heartbeats (/api/gateway/health/) must not use up the plan.
        if not self.path or request.method != "POST" or request.path != "/api/gateway/events/":
            return self.get_response(request)
        step, reject = self.next_step(request)
        body = request.body
        if request.META.get("HTTP_CONTENT_ENCODING") == "gzip":
            body = gzip.decompress(body)
        if reject is not None and f':{reject}"'.encode() in body:
            return JsonResponse({"error": "malformed batch", "reasons": {"injected": f"seq {reject} refused"}}, status=400)
        if step == "login":
            return HttpResponse("<html><body><form>Sign in to the hotel Wi-Fi</form></body></html>", status=200)
        if step.isdigit() and 300 <= int(step) < 400:
            response = HttpResponse(status=int(step))
            response["Location"] = "/login/"
            return response
        if step.isdigit():
            return JsonResponse({"error": "injected"}, status=int(step))
        if step.startswith("429:"):
            response = JsonResponse({"error": "slow down"}, status=429)
            response["Retry-After"] = step.split(":")[1]
            return response
        if step.startswith("hang:"):
            response = self.get_response(request)
            time.sleep(float(step.split(":")[1]))
            return response
        return self.get_response(request)
