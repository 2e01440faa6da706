package org.nxia.device.virtio.internal.pmem;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.spi.InterruptLine;

/**
 * The context the pmem device hands its transport passes every call through to the VM's, unchanged
 * both ways (a file-backed region's file included: a snapshot saves such a region by reference), and
 * remembers the line the transport claims.
 */
class LineCaptureTest {

    /** A stand-in of interface {@code type} that answers nothing. */
    private static Object stub(Class<?> type) {
        return Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, m, a) -> switch (m.getName()) {
            case "equals" -> p == a[0];
            case "hashCode" -> System.identityHashCode(p);
            case "toString" -> type.getSimpleName() + " stub";
            default -> null;
        });
    }

    private static Object sample(Class<?> type, int i) {
        if (type == String.class) return "s" + i;
        if (type == long.class) return 40L + i;
        if (type == int.class) return 7 + i;
        if (type == boolean.class) return true;
        if (type == byte[].class) return new byte[] {(byte) i};
        if (type == MemorySegment.class) return MemorySegment.ofArray(new byte[8 + i]);
        if (type == Optional.class) return Optional.of(Path.of("/srv/regions/r" + i + ".img"));
        if (type.isInterface()) return stub(type);
        throw new AssertionError("no sample of " + type);
    }

    private static Object answer(Method m) {
        Class<?> r = m.getReturnType();
        if (r == void.class) return null;
        if (r == Optional.class) {
            Class<?> of = (Class<?>) ((ParameterizedType) m.getGenericReturnType()).getActualTypeArguments()[0];
            return Optional.of(stub(of));
        }
        return sample(r, 99);
    }

    @Test
    void everyCallReachesTheVmsContextAndItsAnswerComesBack() throws Exception {
        List<String> reached = new ArrayList<>();
        Object[] lastArgs = new Object[1];
        Object[] lastAnswer = new Object[1];
        DeviceContext vm = (DeviceContext) Proxy.newProxyInstance(DeviceContext.class.getClassLoader(),
                new Class<?>[] {DeviceContext.class}, (p, m, a) -> {
                    reached.add(m.getName() + m.getParameterCount());
                    lastArgs[0] = a == null ? new Object[0] : a;
                    lastAnswer[0] = answer(m);
                    return lastAnswer[0];
                });
        VirtioPmemFactory.LineCapture capture = new VirtioPmemFactory.LineCapture(vm);
        int checked = 0;
        for (Method m : DeviceContext.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) {
                continue;
            }
            Object[] args = new Object[m.getParameterCount()];
            for (int i = 0; i < args.length; i++) {
                args[i] = sample(m.getParameterTypes()[i], i);
            }
            reached.clear();
            Object got = m.invoke(capture, args);
            assertEquals(List.of(m.getName() + m.getParameterCount()), reached, m + " reaches the VM's context once, as itself");
            assertArrayEquals(args, (Object[]) lastArgs[0], m + " passes its arguments unchanged");
            if (m.getReturnType() != void.class) {
                assertEquals(lastAnswer[0], got, m + " returns the VM's answer");
            }
            checked++;
        }
        assertEquals(DeviceContext.class.getMethods().length, checked, "every method of DeviceContext");
    }

    @Test
    void theLineTheTransportClaimsIsRemembered() {
        InterruptLine line = (InterruptLine) stub(InterruptLine.class);
        DeviceContext vm = (DeviceContext) Proxy.newProxyInstance(DeviceContext.class.getClassLoader(),
                new Class<?>[] {DeviceContext.class}, (p, m, a) -> m.getName().equals("claimIrq") ? Optional.of(line) : null);
        VirtioPmemFactory.LineCapture capture = new VirtioPmemFactory.LineCapture(vm);
        assertSame(line, capture.claimIrq().orElseThrow());
        assertSame(line, capture.line);
    }
}
