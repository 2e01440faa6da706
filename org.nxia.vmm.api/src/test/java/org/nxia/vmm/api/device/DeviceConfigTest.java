package org.nxia.vmm.api.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DeviceConfigTest {

    @Test
    void parsesTypeAlone() {
        DeviceConfig c = DeviceConfig.parse("uart");
        assertEquals("uart", c.type());
        assertTrue(c.parameters().isEmpty());
        assertEquals("uart", c.toString());
    }

    @Test
    void parsesParametersInOrder() {
        DeviceConfig c = DeviceConfig.parse("blk:path=disk.img,ro=false");
        assertEquals("blk", c.type());
        assertEquals(Map.of("path", "disk.img", "ro", "false"), c.parameters());
        assertFalse(c.flag("ro", true));
        assertEquals("disk.img", c.get("path", null));
        assertEquals("x", c.get("missing", "x"));
    }

    @Test
    void readsNumbersInDecimalAndHexWithinBounds() {
        DeviceConfig c = DeviceConfig.parse("uart:port=0x2f8,n=12");
        assertEquals(0x2f8, c.number("port", 0, 0, 0xffff));
        assertEquals(12, c.number("n", 0, 0, 100));
        assertEquals(5, c.number("absent", 5, 0, 10));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> c.number("port", 0, 0, 0xff)).getMessage().contains("outside"));
        DeviceConfig bad = DeviceConfig.parse("uart:port=com1");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> bad.number("port", 0, 0, 0xffff)).getMessage().contains("not a number"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "Uart", "9p", "u_art", "uart:port", "uart:=1", "uart:port=1,port=2", "a:B C=1"})
    void refusesMalformedSpecs(String spec) {
        assertThrows(IllegalArgumentException.class, () -> DeviceConfig.parse(spec));
    }

    @Test
    void refusesAFlagThatIsNotBoolean() {
        DeviceConfig c = DeviceConfig.parse("blk:ro=maybe");
        assertThrows(IllegalArgumentException.class, () -> c.flag("ro", false));
    }

    @ParameterizedTest
    @ValueSource(strings = {"true", "1", "yes", "on", "TRUE", "On"})
    void readsEveryTrueSpelling(String value) {
        assertTrue(DeviceConfig.parse("blk:ro=" + value).flag("ro", false));
    }

    @ParameterizedTest
    @ValueSource(strings = {"false", "0", "no", "off", "No"})
    void readsEveryFalseSpelling(String value) {
        assertFalse(DeviceConfig.parse("blk:ro=" + value).flag("ro", true));
    }

    @Test
    void anAbsentFlagIsItsFallback() {
        DeviceConfig c = DeviceConfig.parse("blk");
        assertTrue(c.flag("ro", true));
        assertFalse(c.flag("ro", false));
    }

    @Test
    void numberBoundsAreInclusive() {
        DeviceConfig c = DeviceConfig.parse("uart:lo=10,hi=20");
        assertEquals(10, c.number("lo", 0, 10, 20));
        assertEquals(20, c.number("hi", 0, 10, 20));
        assertThrows(IllegalArgumentException.class, () -> c.number("lo", 0, 11, 20));
        assertThrows(IllegalArgumentException.class, () -> c.number("hi", 0, 10, 19));
        assertEquals(0x1F, DeviceConfig.parse("uart:n=0X1f").number("n", 0, 0, 100));
    }

    @Test
    void aTrailingColonMeansNoParametersAndSpacesAroundPartsAreTrimmed() {
        assertTrue(DeviceConfig.parse("virtio-rng:").parameters().isEmpty());
        DeviceConfig c = DeviceConfig.parse("  blk: Path = a.img ,ro=1 ");
        assertEquals("blk", c.type());
        assertEquals(Map.of("path", "a.img", "ro", "1"), c.parameters());
    }

    @Test
    void printsWhatParsesBackToTheSameConfig() {
        DeviceConfig c = DeviceConfig.parse("blk:path=disk.img,ro=true");
        assertEquals("blk:path=disk.img,ro=true", c.toString());
        assertEquals(c, DeviceConfig.parse(c.toString()));
    }
}
