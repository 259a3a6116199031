import os, runpy
from pyinstrument import Profiler
p = Profiler(interval=0.001); p.start()
try:
    runpy.run_path("/work/main/streamlit_app.py", run_name="__main__")
finally:
    p.stop()
    if os.environ.get("PROF_OUT"):
        with open(os.environ["PROF_OUT"], "a") as f:
            f.write(p.output_text(unicode=False, color=False, show_all=False))
