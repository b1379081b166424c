"""The signal other apps hook to hear of a gateway's state changing (a push service, an SMS
gateway): sent once per change, after the change is saved and the e-mail is sent.

    from django.dispatch import receiver
    from wiregate_events.signals import gateway_state_changed

    @receiver(gateway_state_changed)
    def page_someone(sender, gateway, old_state, new_state, reasons, health, **kwargs):
        ...
"""
import django.dispatch

# Arguments: gateway (its id), old_state (None for a gateway's first heartbeat), new_state,
# reasons (a list of strings), health (the GatewayHealth row).
gateway_state_changed = django.dispatch.Signal()
