// libmosquitto, as Debian's libmosquitto-dev installs it.
// Nothing else lives here: every wrapper is Swift, in Sources/Wiregate/MQTT.
#include <mosquitto.h>
#include <mqtt_protocol.h>
