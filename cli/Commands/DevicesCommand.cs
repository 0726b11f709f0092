using System.CommandLine;
using System.Text.Json;
using CrateIL.Compute.Devices;
using Spectre.Console;


namespace CrateIL.Cli.Commands;

/// <summary><c>crate devices</c>: every backend, its properties, and why a device was rejected.</summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the listing as JSON" };
        var cmd = new Command("devices", "List CPU (SIMD), CUDA, OpenCL and ILGPU-CPU devices, and which one is the default") { json };
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var list = DeviceRegistry.List();
            string defaultSpec;
            using (var d = CliErrors.OpenDevice(null)) defaultSpec = d.Spec;
            if (parse.GetValue(json))
            {
                var payload = new
                {
                    @default = defaultSpec,
                    devices = list.Select(d => new
                    {
                        spec = d.Spec,
                        kind = d.Kind.ToSpec(),
                        name = d.Name,
                        usable = d.Usable,
                        rejected_reason = d.RejectedReason,
                        properties = d.Properties.ToDictionary(p => p.Key, p => p.Value),
                    }),
                };
                Console.WriteLine(JsonSerializer.Serialize(payload, new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            foreach (var d in list)
            {
                string status = d.Usable ? (d.Spec == defaultSpec ? "[green]usable, default[/]" : "[green]usable[/]") : "[yellow]rejected[/]";
                AnsiConsole.MarkupLine($"[bold]{Markup.Escape(d.Spec),-12}[/] {Markup.Escape(d.Name)}  ({status})");
                if (!d.Usable) AnsiConsole.MarkupLine($"    reason: {Markup.Escape(d.RejectedReason ?? "")}");
                foreach (var p in d.Properties) Console.WriteLine($"    {p.Key}: {p.Value}");
            }
            Console.WriteLine($"default: {defaultSpec} (override with {DeviceRegistry.DeviceVariable}=cpu|cuda|opencl|ilgpu-cpu[:index])");
            return 0;
        }));
        return cmd;
    }
}
