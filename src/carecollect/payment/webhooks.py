"""`POST /hooks/stripe` (and `/hooks/sandbox`): verify, refuse replays, post.

Mount with `app.include_router(payment.webhooks.router)`; the app must put the processor
registry in `app.state.payment_processors` (name -> `PaymentProcessor`), the database in
`app.state.db` and a `keys_for(organization_id)` callable in `app.state.keys_for`.
A rejected webhook answers 400 with a fixed reason and posts nothing; an autopay setup event
whose SetupIntent cannot be fetched from the processor answers 503 (nothing recorded, so
the processor delivers it again).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from carecollect.payment.processor import ProcessorError, WebhookRejected
from carecollect.payment.service import payment_service

router = APIRouter(prefix="/hooks", include_in_schema=False)


@router.post("/{processor_name}")
async def receive(processor_name: str, request: Request) -> JSONResponse:
    processors = getattr(request.app.state, "payment_processors", {})
    processor = processors.get(processor_name)
    if processor is None:
        return JSONResponse({"error": "unknown processor"}, status_code=404)
    header = request.headers.get("stripe-signature")
    body = await request.body()  # the exact bytes: the signature covers them
    try:
        # Database work is synchronous (ARCHITECTURE.md section 1): off the event loop.
        outcome = await run_in_threadpool(
            payment_service.handle_webhook, request.app.state.db,
            keys_for=request.app.state.keys_for, processor=processor, payload=body,
            signature_header=header)
    except WebhookRejected as exc:
        return JSONResponse({"error": exc.reason}, status_code=400)
    except ProcessorError as exc:
        # An autopay setup event needs the processor's answer (the SetupIntent's method);
        # without it nothing was recorded, so a 503 makes the processor deliver it again.
        return JSONResponse({"error": exc.code}, status_code=503)
    return JSONResponse({"outcome": outcome})
