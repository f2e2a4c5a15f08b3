package io.asyncctx.engine.pkcs11;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** RFC 7512 URIs as operators write them for OpenSSL's pkcs11 provider and p11-kit. */
class Pkcs11UriTest {

    @Test
    void shouldReadTokenObjectAndType() {
        Pkcs11Uri u = Pkcs11Uri.parse("pkcs11:token=web;object=tls-key;type=private");
        assertEquals("web", u.token());
        assertEquals("tls-key", u.object());
        assertNull(u.id());
        assertNull(u.modulePath());
        assertNull(u.pinFile());
    }

    @Test
    void shouldReadPercentEncodedIdsAndLabels() {
        Pkcs11Uri u = Pkcs11Uri.parse("pkcs11:token=My%20Token;id=%01%a0;object=k%3Bey");
        assertEquals("My Token", u.token());
        assertArrayEquals(new byte[]{1, (byte) 0xa0}, u.id());
        assertEquals("k;ey", u.object());
    }

    @Test
    void shouldReadSlotSerialManufacturerModelAndQueryAttributes() {
        Pkcs11Uri u = Pkcs11Uri.parse("pkcs11:slot-id=7;serial=4bf8f68d3464443c;manufacturer=SoftHSM%20project;"
                + "model=SoftHSM%20v2;id=%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/tls/pin"
                + "&unknown=ignored");
        assertEquals(7L, u.slotId());
        assertEquals("4bf8f68d3464443c", u.serial());
        assertEquals("SoftHSM project", u.manufacturer());
        assertEquals("SoftHSM v2", u.model());
        assertEquals(Path.of("/usr/lib/softhsm/libsofthsm2.so"), u.modulePath());
        assertEquals(Path.of("/etc/tls/pin"), u.pinFile());
    }

    @Test
    void shouldAcceptAnAbsolutePinSourceWithoutScheme() {
        assertEquals(Path.of("/run/pin"), Pkcs11Uri.parse("pkcs11:object=k?pin-source=/run/pin").pinFile());
        assertEquals(Path.of("/run/pin"), Pkcs11Uri.parse("pkcs11:object=k?pin-source=file:///run/pin").pinFile());
    }

    @Test
    void shouldRecogniseTheScheme() {
        assertTrue(Pkcs11Uri.isPkcs11Uri("PKCS11:object=k"));
        assertFalse(Pkcs11Uri.isPkcs11Uri("/etc/tls/key.pem"));
        assertFalse(Pkcs11Uri.isPkcs11Uri(null));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "pkcs11:token=web|names no key",
        "pkcs11:token=web;object=k;type=cert|must be type=private",
        "pkcs11:token=web;objekt=k|'objekt' is not known",
        "pkcs11:object=k;slot-id=x|slot-id 'x' is not a number",
        "pkcs11:object=k;id=%0|truncated %-escape",
        "pkcs11:object=k;id=%zz|bad %-escape",
        "pkcs11:object=k;token|has no value",
        "pkcs11:object=k?pin-value=1234|pin-source=file:",
        "pkcs11:object=k?pin-source=relative/pin|absolute path",
        "/etc/key.pem|not a PKCS#11 URI"
    })
    void shouldRefuseWithTheReason(String uri, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Pkcs11Uri.parse(uri));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("1234") && uri.contains("pin-value"), "the PIN must not be echoed");
    }
}
